"""Contact-list sign-in (issue 12, Deliver 7). Two modes.

One user (the default): a user with 250 contacts (Skype for Business's
default MaxContacts) subscribes to their list (`sip:alice-contacts@<domain>`, RFC 4662 with
`Supported: eventlist`); the time from the SUBSCRIBE to the NOTIFY whose RLMI names all 250 is
taken, first with the Front End's list watch cold (Autodiscover, GetImItemList through EWS),
then warm. NOTIFYs over 1,300 bytes come over TCP (RFC 3261 §18.1.1), to the watcher's port. The list is filled in one XCAP PUT of the whole document (timed too), so this also
measures the XCAP path.

Crowd (`--users N`): N users, each with `--contacts` contacts (other users of the N), made by one
EWS CreateItem of that many Contact items in their Quick Contacts (as Outlook-style clients save
them; such contacts are on the list), all subscribe to their own lists at once; the time from
each SUBSCRIBE to the NOTIFY naming all its contacts is taken (p50, p95, max) and the time until
the last user had their whole list.

Starts `tandem up` ($TANDEM_BIN) on free ports with the extra users imported, and prints JSON.

Run: TANDEM_BIN=$CARGO_TARGET_DIR/release/tandem .venv/bin/python bench/ucs/signin.py [--contacts 250] [--rounds 5]
     TANDEM_BIN=… .venv/bin/python bench/ucs/signin.py --users 1000 --contacts 80
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import ssl
import urllib.request
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

here = Path(__file__).resolve()
sys.path.insert(0, str(here.parents[2] / "tests" / "interop"))
sys.path.insert(0, str(here.parents[1] / "presence"))
from conftest import DEMO_PASSWORD, DOMAIN, Tandem, answer_notifies_on_stream  # noqa: E402
from watchers import Sip  # noqa: E402

RL = "urn:ietf:params:xml:ns:resource-lists"


class ListSip(Sip):
    """The watchers' SIP client, subscribing to resource lists (RFC 4662)."""

    def __init__(self, server, password):
        self.bodies: dict[str, list[tuple[float, int]]] = {}
        super().__init__(server, password)
        # A full-state NOTIFY of a large list is more than a datagram holds: the Front End sends
        # it over a TCP connection to the address the SUBSCRIBE came from (RFC 3261 §18.1.1),
        # so the UDP port takes TCP connections too, as a client's would.
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._stream, args=(conn,), daemon=True).start()

    def _stream(self, conn):
        def heard(head, body, now):
            cid = re.search(r"^(?:Call-ID|i):\s*(\S+)", head, re.M | re.I)
            with self.lock:
                self.on_notify(cid.group(1) if cid else "", now, body)
                self.lock.notify_all()

        answer_notifies_on_stream(conn, heard, lambda: not self.stop)

    def subscribe_headers(self) -> list[str]:
        return ["Supported: eventlist", "Accept: application/pidf+xml, application/rlmi+xml, multipart/related",
                "Expires: 600"]

    def on_notify(self, call_id: str, now: float, body: str):
        # The RLMI part says how many resources the NOTIFY names.
        self.bodies.setdefault(call_id, []).append((now, body.count("<resource ")))

    def time_to_full_list(self, owner: str, n: int, budget: float = 60.0) -> float | None:
        before = set(self.bodies)
        started = time.monotonic()
        if not self.request("SUBSCRIBE", owner, f"{owner}-contacts"):
            return None
        deadline = started + budget
        with self.lock:
            while time.monotonic() < deadline:
                for cid, got in self.bodies.items():
                    if cid in before:
                        continue
                    for t, count in got:
                        if count >= n:
                            return t - started
                self.lock.wait(0.05)
        return None


def fill_quick_contacts(ews: str, ca: str, user: str, contacts: list[str]) -> None:
    """One CreateItem of Contact items with an IM address in the user's Quick Contacts."""
    items = "".join(
        f"<t:Contact><t:DisplayName>{c.split(':')[1].split('@')[0]}</t:DisplayName>"
        f'<t:ImAddresses><t:Entry Key="ImAddress1">{c}</t:Entry></t:ImAddresses></t:Contact>' for c in contacts)
    body = ('<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
            'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Header>'
            '<t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body><m:CreateItem><m:SavedItemFolderId>'
            '<t:DistinguishedFolderId Id="quickcontacts"/></m:SavedItemFolderId>'
            f"<m:Items>{items}</m:Items></m:CreateItem></s:Body></s:Envelope>")
    auth = base64.b64encode(f"{user}@{DOMAIN}:{DEMO_PASSWORD}".encode()).decode()
    req = urllib.request.Request(ews, data=body.encode(), method="POST", headers={
        "Content-Type": "text/xml; charset=utf-8", "Authorization": f"Basic {auth}"})
    with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca), timeout=120) as resp:
        text = resp.read().decode()
    assert text.count('ResponseClass="Success"') == len(contacts), text[:2000]


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def crowd(a, t: Tandem) -> dict:
    """N users with `a.contacts` contacts each subscribe to their lists at once."""
    names = [f"c{i:04d}" for i in range(a.users)]
    st = t.status()
    ews, ca = st["mailbox"]["ews_url"], st["ca_certificate"]
    s = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: fill_quick_contacts(ews, ca, names[i], [
            f"sip:{names[(i + k) % a.users]}@{DOMAIN}" for k in range(1, a.contacts + 1)]), range(a.users)))
    fill_s = time.perf_counter() - s
    sip = ListSip(("127.0.0.1", t.sip_port), DEMO_PASSWORD)
    started: dict[str, float] = {}

    def subscribe(owner: str) -> bool:
        started[owner] = time.monotonic()
        return sip.request("SUBSCRIBE", owner, f"{owner}-contacts")

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(200) as pool:
        ok = list(pool.map(subscribe, names))
    deadline = time.monotonic() + 600
    took: dict[str, float] = {}
    with sip.lock:
        while time.monotonic() < deadline and len(took) < a.users:
            for cid, got in sip.bodies.items():
                owner = sip.dialogs.get(cid, ("", ""))[0]
                if owner in took or owner not in started:
                    continue
                full = [tt for tt, count in got if count >= a.contacts]
                if full:
                    took[owner] = min(full) - started[owner]
            sip.lock.wait(0.2)
    last = max((started[o] + d for o, d in took.items()), default=t0) - t0
    times = list(took.values())
    return {
        "users": a.users, "contacts_each": a.contacts,
        "fill_quick_contacts_s": round(fill_s, 1),
        "subscribes_refused": ok.count(False),
        "final_answers": sip.codes,
        "udp_retransmissions": sip.retransmissions,
        "full_lists": len(took),
        "subscribe_to_full_notify_ms_p50": round(pct(times, 50) * 1000, 1) if times else None,
        "subscribe_to_full_notify_ms_p95": round(pct(times, 95) * 1000, 1) if times else None,
        "subscribe_to_full_notify_ms_max": round(max(times) * 1000, 1) if times else None,
        "all_lists_full_after_s": round(last, 2),
        "load": os.getloadavg(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=250)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--users", type=int, default=0, help="crowd mode: this many users sign in at once")
    a = ap.parse_args()
    t = Tandem(Path(os.environ["TANDEM_BIN"]), Path(tempfile.mkdtemp()), frontend_extra="sip_requests_per_second_per_source = 0")
    t.start()
    try:
        csv = t.root / "users.csv"
        csv.write_text("name,display_name,sip_address,primary_smtp_address,password\n" + "".join(
            f"c{i:04d},Contact {i:04d},,,{DEMO_PASSWORD}\n" for i in range(max(a.contacts, a.users))))
        r = t.run("user", "import", "--csv", str(csv), *t.location, timeout=600)
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 60
        while json.loads(t.run("integration", "status", "--json", *t.location).stdout or "{}").get("ok") is not True:
            assert time.monotonic() < deadline, "the integration setup did not finish"
            time.sleep(0.5)
        if a.users:
            print(json.dumps(crowd(a, t)))
            return
        st = t.status()
        entries = "".join(f'<entry uri="sip:c{i:04d}@{DOMAIN}"/>' for i in range(a.contacts))
        doc = f'<?xml version="1.0"?><resource-lists xmlns="{RL}"><list name="Other Contacts">{entries}</list></resource-lists>'
        url = f"https://pool.{DOMAIN}:{t.frontend_https_port}/xcap/resource-lists/users/sip:alice@{DOMAIN}/index"
        s = time.perf_counter()
        put = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", st["ca_certificate"],
                              "--resolve", f"pool.{DOMAIN}:{t.frontend_https_port}:127.0.0.1", "-u", f"alice:{DEMO_PASSWORD}",
                              "-X", "PUT", "-H", "Content-Type: application/resource-lists+xml", "--data-binary", doc, url],
                             capture_output=True, text=True, timeout=600)
        put_s = time.perf_counter() - s
        assert put.stdout == "200", put.stdout + put.stderr
        sip = ListSip(("127.0.0.1", t.sip_port), DEMO_PASSWORD)
        cold = sip.time_to_full_list("alice", a.contacts)
        warm = [sip.time_to_full_list("alice", a.contacts) for _ in range(a.rounds)]
        warm_ok = [w for w in warm if w is not None]
        print(json.dumps({
            "contacts": a.contacts,
            "xcap_put_whole_document_s": round(put_s, 2),
            "subscribe_to_full_notify_cold_ms": None if cold is None else round(cold * 1000, 1),
            "subscribe_to_full_notify_warm_ms_p50": round(statistics.median(warm_ok) * 1000, 1) if warm_ok else None,
            "warm_rounds": len(warm), "warm_failed": len(warm) - len(warm_ok),
            "load": os.getloadavg(),
        }))
    finally:
        t.kill_all()


if __name__ == "__main__":
    main()
