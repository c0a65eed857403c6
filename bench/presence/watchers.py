#!/usr/bin/env python3
"""End-to-end presence benchmark (issue 11, Deliver 7): SIP watchers and EWS meetings against a
running tandem, as an independent client (stdlib only: one UDP socket for every watcher dialog,
RFC 2617 digest, EWS CreateItem over HTTPS with Basic auth).

Phase "latency": users user0000..user{N-1}; each is watched by the K users after it (user i+1 ..
i+K, modulo N), so N*K SUBSCRIBE dialogs; then one meeting covering now is created in each
watched user's calendar at RATE per second through EWS CreateItem, and for every meeting the
time from the CreateItem response to each watcher's NOTIFY carrying <rpid:meeting/> is taken.
Phase "idle": the same watches held for IDLE seconds; the tandem process's RSS and CPU, and the
Front End's GetStreamingEvents connections (its /metrics), are read before and after.

Prints one JSON object. bench/presence/e2e.sh starts tandem, imports the users, and runs this.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import datetime
import hashlib
import json
import os
import random
import re
import socket
import ssl
import statistics
import threading
import time
import urllib.request

DOMAIN = "litwareinc.com"


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def user(i: int) -> str:
    return f"user{i:04d}"


class Sip:
    """Every watcher dialog on one UDP socket: requests matched to answers by Call-ID and CSeq,
    NOTIFYs answered 200 and recorded with their arrival time."""

    def __init__(self, server: tuple[str, int], password: str):
        self.server = server
        self.password = password
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Condition()
        self.answers: dict[tuple[str, int], str] = {}
        # Call-ID -> (watcher, target); NOTIFY arrivals: Call-ID -> [(t, meeting?)]
        self.dialogs: dict[str, tuple[str, str]] = {}
        self.notifies: dict[str, list[tuple[float, bool]]] = {}
        self.notify_count = 0
        # Final answers by status code ("timeout" when Timer B fired) and UDP retransmissions.
        self.codes: dict[str, int] = {}
        self.retransmissions = 0
        self.stop = False
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                data, _ = self.sock.recvfrom(1 << 20)
            except (socket.timeout, OSError):
                continue
            now = time.monotonic()
            msg = data.decode(errors="replace")
            head, _, body = msg.partition("\r\n\r\n")
            call_id = re.search(r"^(?:Call-ID|i):\s*(\S+)", head, re.M | re.I)
            call_id = call_id.group(1) if call_id else ""
            if msg.startswith("NOTIFY "):
                lines = head.split("\r\n")
                keep = [h for h in lines[1:] if re.match(r"(Via|v|From|f|To|t|Call-ID|i|CSeq):", h, re.I)]
                self.sock.sendto(("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode(),
                                 self.server)
                with self.lock:
                    self.on_notify(call_id, now, body)
                    self.lock.notify_all()
            elif msg.startswith("SIP/2.0"):
                if msg.startswith("SIP/2.0 1"):
                    continue
                cseq = re.search(r"^CSeq:\s*(\d+)", head, re.M | re.I)
                with self.lock:
                    self.answers[(call_id, int(cseq.group(1)) if cseq else 0)] = msg
                    self.lock.notify_all()

    def on_notify(self, call_id: str, now: float, body: str):
        """Records a NOTIFY (called with the lock held)."""
        self.notify_count += 1
        self.notifies.setdefault(call_id, []).append((now, "<rpid:meeting/>" in body))

    def subscribe_headers(self) -> list[str]:
        return ["Accept: application/pidf+xml", "Expires: 3600"]

    def _send(self, watcher, target, call_id, cseq, tag, auth=None, method="SUBSCRIBE", body="", branch=""):
        uri = f"sip:{target}@{DOMAIN}"
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch or f'z9hG4bK{random.getrandbits(48):x}'};rport",
            "Max-Forwards: 70",
            f"From: <sip:{watcher}@{DOMAIN}>;tag={tag}",
            f"To: <{uri}>",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{watcher}@127.0.0.1:{self.port}>",
            "Event: presence",
        ]
        if method == "SUBSCRIBE":
            lines += self.subscribe_headers()
        else:
            lines += ["Content-Type: application/pidf+xml", "Expires: 3600"]
        if auth:
            lines.append(auth)
        lines.append(f"Content-Length: {len(body.encode())}")
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), self.server)

    def _wait(self, key, budget=10.0) -> str | None:
        deadline = time.monotonic() + budget
        with self.lock:
            while key not in self.answers:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.lock.wait(left)
            return self.answers.pop(key)

    def subscribe(self, watcher: str, target: str) -> bool:
        return self.request("SUBSCRIBE", watcher, target)

    def publish_available(self, who: str) -> bool:
        """PUBLISH of an open (available) presence document: the user is signed in, so a meeting
        shows (an offline user in a meeting stays offline, as in Skype for Business)."""
        body = ('<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" '
                f'entity="sip:{who}@{DOMAIN}"><tuple id="t1"><status><basic>open</basic></status></tuple></presence>')
        return self.request("PUBLISH", who, who, body)

    def _transact(self, watcher, target, call_id, cseq, tag, auth=None, method="SUBSCRIBE", body="") -> str | None:
        """One client transaction over UDP as RFC 3261 §17.1.1 runs it: the request is sent again
        (same branch) after 0.5 s, doubling up to 4 s, until an answer or 32 s (Timer B)."""
        branch = f"z9hG4bK{random.getrandbits(48):x}"
        deadline = time.monotonic() + 32.0
        interval = 0.5
        while True:
            self._send(watcher, target, call_id, cseq, tag, auth, method=method, body=body, branch=branch)
            left = deadline - time.monotonic()
            r = self._wait((call_id, cseq), min(interval, left))
            if r is not None or left <= interval:
                return r
            with self.lock:
                self.retransmissions += 1
            interval = min(interval * 2, 4.0)

    def request(self, method: str, watcher: str, target: str, body: str = "") -> bool:
        """A request with its digest round; a 503 is retried after its Retry-After (as clients
        do, at most 5 times). Every final answer is counted in `codes`."""
        for _ in range(6):
            r = self._request_once(method, watcher, target, body)
            code = r[8:11] if r else "timeout"
            with self.lock:
                self.codes[code] = self.codes.get(code, 0) + 1
            if code != "503":
                return code in ("200", "202")
            after = re.search(r"^Retry-After:\s*(\d+)", r, re.M | re.I)
            time.sleep(int(after.group(1)) if after else 1)
        return False

    def _request_once(self, method: str, watcher: str, target: str, body: str) -> str | None:
        call_id = f"{random.getrandbits(64):x}@bench"
        tag = f"{random.getrandbits(32):x}"
        if method == "SUBSCRIBE":
            with self.lock:
                self.dialogs[call_id] = (watcher, target)
        r = self._transact(watcher, target, call_id, 1, tag, method=method, body=body)
        if r and (r.startswith("SIP/2.0 401") or r.startswith("SIP/2.0 407")):
            proxy = r.startswith("SIP/2.0 407")
            name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
            ch = re.search(rf"^{name}:\s*Digest (.*)$", r, re.M | re.I).group(1)
            p = dict(re.findall(r'(\w+)="?([^",]+)"?', ch))
            uri = f"sip:{target}@{DOMAIN}"
            ha1 = md5(f"{watcher}:{p['realm']}:{self.password}")
            ha2 = md5(f"{method}:{uri}")
            cnonce, nc = f"{random.getrandbits(32):x}", "00000001"
            if "qop" in p:
                resp = md5(f"{ha1}:{p['nonce']}:{nc}:{cnonce}:auth:{ha2}")
                extra = f", qop=auth, nc={nc}, cnonce=\"{cnonce}\""
            else:
                resp, extra = md5(f"{ha1}:{p['nonce']}:{ha2}"), ""
            header = "Proxy-Authorization" if proxy else "Authorization"
            auth = (f'{header}: Digest username="{watcher}", realm="{p["realm"]}", nonce="{p["nonce"]}", '
                    f'uri="{uri}", response="{resp}", algorithm=MD5{extra}')
            r = self._transact(watcher, target, call_id, 2, tag, auth, method=method, body=body)
        return r


class Ews:
    def __init__(self, url: str, ca: str, password: str):
        self.url = url
        self.password = password
        self.ctx = ssl.create_default_context(cafile=ca)

    def create_meeting(self, who: str, subject: str, minutes: int = 30) -> float:
        """CreateItem of a Busy appointment covering now; returns the monotonic time of the response."""
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        start, end = now - datetime.timedelta(minutes=1), now + datetime.timedelta(minutes=minutes)
        z = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = (
            '<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
            'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Header>'
            '<t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body>'
            '<m:CreateItem SendMeetingInvitations="SendToNone"><m:SavedItemFolderId>'
            '<t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId><m:Items><t:CalendarItem>'
            f"<t:Subject>{subject}</t:Subject><t:Start>{z(start)}</t:Start><t:End>{z(end)}</t:End>"
            "<t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus></t:CalendarItem></m:Items></m:CreateItem>"
            "</s:Body></s:Envelope>"
        )
        auth = base64.b64encode(f"{who}@{DOMAIN}:{self.password}".encode()).decode()
        req = urllib.request.Request(self.url, data=body.encode(), method="POST", headers={
            "Content-Type": "text/xml; charset=utf-8", "Authorization": f"Basic {auth}"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=30) as resp:
            text = resp.read().decode()
        done = time.monotonic()
        if 'ResponseClass="Success"' not in text:
            raise RuntimeError(f"CreateItem failed for {who}: {text[:400]}")
        return done


def proc_stat(pid: int) -> tuple[int, float]:
    """(RSS in KiB, CPU seconds used) of a process."""
    with open(f"/proc/{pid}/status") as f:
        rss = int(next(l for l in f if l.startswith("VmRSS")).split()[1])
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, (int(parts[11]) + int(parts[12])) / ticks


def metrics(url: str, ca: str) -> dict[str, float]:
    ctx = ssl.create_default_context(cafile=ca)
    with urllib.request.urlopen(url, context=ctx, timeout=30) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r'^(tandem_calendar_presence_(?:watches\{state="(\w+)"\}|stream_connections|changes_total))\s+(\S+)',
                     line)
        if m:
            out[m.group(2) or m.group(1)] = float(m.group(3))
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sip", required=True, help="host:port of the Front End's SIP UDP listener")
    ap.add_argument("--ews", required=True)
    ap.add_argument("--metrics", required=True, help="the Front End's /metrics URL")
    ap.add_argument("--ca", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--watchers", type=int, default=5, help="watchers per watched user")
    ap.add_argument("--meetings", type=int, default=-1, help="meetings to create (default: one per user)")
    ap.add_argument("--rate", type=float, default=10.0, help="meetings per second")
    ap.add_argument("--subscribe-workers", type=int, default=32)
    ap.add_argument("--idle", type=float, default=20.0)
    a = ap.parse_args()
    host, port = a.sip.rsplit(":", 1)
    sip = Sip((host, int(port)), a.password)
    ews = Ews(a.ews, a.ca, a.password)
    out: dict = {"users": a.users, "watchers_per_user": a.watchers}
    rss0, cpu0 = proc_stat(a.pid)
    out["rss_kib_before"] = rss0

    meetings = a.users if a.meetings < 0 else min(a.meetings, a.users)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(a.subscribe_workers) as pool:
        published = sum(pool.map(sip.publish_available, [user(i) for i in range(meetings)]))
    out["signed_in"] = {"asked": meetings, "accepted": published, "seconds": round(time.monotonic() - t0, 1)}
    pairs = [(user((i + k) % a.users), user(i)) for i in range(a.users) for k in range(1, a.watchers + 1)]
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(a.subscribe_workers) as pool:
        ok = sum(pool.map(lambda p: sip.subscribe(*p), pairs))
    out["subscriptions"] = {"asked": len(pairs), "accepted": ok, "seconds": round(time.monotonic() - t0, 1)}

    # Every watched user gets a mailbox watch: wait until they are all watching.
    t0 = time.monotonic()
    m = {}
    while time.monotonic() - t0 < 600:
        m = metrics(a.metrics, a.ca)
        if m.get("watching", 0) >= a.users:
            break
        time.sleep(1)
    out["watches_ready_seconds"] = round(time.monotonic() - t0, 1)
    out["watches"] = {"watching": m.get("watching"), "failing": m.get("failing"),
                      "stream_connections": m.get("tandem_calendar_presence_stream_connections")}
    time.sleep(3)
    rss1, cpu1 = proc_stat(a.pid)
    time.sleep(a.idle)
    rss2, cpu2 = proc_stat(a.pid)
    out["idle"] = {"seconds": a.idle, "rss_kib": rss2, "rss_kib_per_watched_user": round((rss2 - rss0) / a.users, 1),
                   "cpu_percent": round(100 * (cpu2 - cpu1) / a.idle, 1)}

    if meetings:
        by_target: dict[str, list[str]] = {}
        with sip.lock:
            for call_id, (_, target) in sip.dialogs.items():
                by_target.setdefault(target, []).append(call_id)
        done: dict[str, float] = {}
        t_start = time.monotonic()
        cpu_a = proc_stat(a.pid)[1]

        def book(i: int):
            due = t_start + i / a.rate
            time.sleep(max(0.0, due - time.monotonic()))
            done[user(i)] = ews.create_meeting(user(i), f"Bench {i}")

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(book, range(meetings)))
        time.sleep(5)
        cpu_b = proc_stat(a.pid)[1]
        lat, missing = [], 0
        with sip.lock:
            for target, t_resp in done.items():
                for call_id in by_target.get(target, []):
                    got = [t for t, meeting in sip.notifies.get(call_id, []) if meeting]
                    if got:
                        lat.append(max(0.0, got[0] - t_resp))
                    else:
                        missing += 1
        wall = time.monotonic() - t_start
        out["latency"] = {
            "meetings": meetings, "rate_per_s": a.rate, "notifies_expected": meetings * a.watchers,
            "notifies_with_meeting": len(lat), "missing": missing,
            "p50_ms": round(1000 * pct(lat, 50), 1), "p99_ms": round(1000 * pct(lat, 99), 1),
            "max_ms": round(1000 * max(lat), 1) if lat else None,
            "cpu_percent_while_booking": round(100 * (cpu_b - cpu_a) / wall, 1),
        }
    out["rss_kib_after"] = proc_stat(a.pid)[0]
    out["notifies_total"] = sip.notify_count
    out["final_answers"] = sip.codes
    out["udp_retransmissions"] = sip.retransmissions
    sip.stop = True
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
