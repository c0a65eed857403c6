"""Conferences (issue 15, the Front End's side): the focus, its mixer, its roster and its IM,
with real clients.

Alice organizes a conference (`tandem cs new-conference`, our "Meet Now") with Bob and Carol
invited. Three baresip clients (aufile sources, each a tone of its own frequency; sndfile records
what each one hears) dial the focus URI; each one's received audio holds the two other tones and
not its own. Dave, not invited, dials too: he is answered but waits in the lobby, hears nothing
and is heard by nobody. A `conference` subscriber (a small SIP user agent over a real TCP socket,
with digest authentication) sees the roster: full state, then partial states as people join and
wait. Bob's MESSAGE to the focus URI (from his second endpoint, below) reaches Alice and Carol, From Bob, and not Dave in the lobby.
A second endpoint of Bob's joins and never sends RTP: the others still hear each other. Alice's
REFER admits Dave. Removing the conference (`tandem cs remove-conference`) BYEs everyone.
Bad input: an unknown conference is 404, a flood of one user's joins is 486 past the limit, and a
SUBSCRIBE for another event package is 489.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_conferences.py -q
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import re
import socket
import struct
import time
import uuid
import wave
from pathlib import Path

import pytest

from conftest import DEMO_PASSWORD, DOMAIN
from test_sip import Baresip, Peers, need, sip_endpoint, write_tone, netns, ns_tandem  # noqa: F401

TONES = {"alice": 440.0, "bob": 1000.0, "carol": 1700.0, "dave": 2500.0}


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def new_conference(t, *args: str) -> dict:
    r = ok(t.run("cs", "new-conference", *args, "--json", *t.location, timeout=20))
    return json.loads(r.stdout)


# ---------------------------------------------------------------- a small SIP UA over TCP


class SipTcp:
    """A SIP user agent over one TCP connection: sends requests (answering 407 with digest
    credentials), reads what the server sends, answers its requests 200."""

    def __init__(self, sock: socket.socket, user: str, password: str):
        self.sock, self.user, self.password = sock, user, password
        self.sock.settimeout(0.3)
        self.buf = b""
        self.local = "%s:%d" % sock.getsockname()[:2]
        self.requests: list[str] = []  # requests the server sent us (NOTIFY, MESSAGE, BYE)
        self.cseq = 0

    def _read(self, budget: float) -> list[str]:
        deadline = time.monotonic() + budget
        out = []
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
            except socket.timeout:
                pass
            while b"\r\n\r\n" in self.buf:
                head, rest = self.buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                n = int(m.group(1)) if m else 0
                if len(rest) < n:
                    break
                msg = (head + b"\r\n\r\n" + rest[:n]).decode(errors="replace")
                self.buf = rest[n:]
                out.append(msg)
                if not msg.startswith("SIP/2.0"):
                    self.requests.append(msg)
                    self._answer(msg)
            if out:
                return out
        return out

    def _answer(self, req: str):
        lines = req.split("\r\n")
        keep = [ln for ln in lines[1:] if re.match(r"(?i)(via|from|to|call-id|cseq):", ln)]
        if not any(ln.lower().startswith("to:") and "tag=" in ln for ln in keep):
            keep = [ln + (";tag=ua" if ln.lower().startswith("to:") else "") for ln in keep]
        self.sock.sendall(("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode())

    def response(self, call_id: str, method: str, budget: float = 10) -> str:
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            for m in self._read(0.5):
                if m.startswith("SIP/2.0") and f"Call-ID: {call_id}" in m and re.search(rf"(?m)^CSeq: \d+ {method}", m):
                    if not re.match(r"SIP/2.0 1\d\d", m):
                        return m
        raise AssertionError(f"no final response to {method} {call_id} within {budget} s")

    def wait_request(self, pred, what: str, budget: float = 15) -> str:
        deadline = time.monotonic() + budget
        seen = 0
        while time.monotonic() < deadline:
            for r in self.requests[seen:]:
                if pred(r):
                    return r
            seen = len(self.requests)
            self._read(0.5)
        raise AssertionError(f"{self.user}: no {what} within {budget} s; got:\n" + "\n----\n".join(self.requests[-5:]))

    def _digest(self, challenge: str, method: str, uri: str) -> str:
        realm = re.search(r'realm="([^"]+)"', challenge).group(1)
        nonce = re.search(r'nonce="([^"]+)"', challenge).group(1)
        opaque = re.search(r'opaque="([^"]+)"', challenge)
        md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
        ha1 = md5(f"{self.user}:{realm}:{self.password}")
        ha2 = md5(f"{method}:{uri}")
        cnonce, nc = uuid.uuid4().hex[:16], "00000001"
        resp = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        v = (f'Digest username="{self.user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
             f'response="{resp}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"')
        return v + (f', opaque="{opaque.group(1)}"' if opaque else "")

    def send(self, method: str, uri: str, headers: list[str] = (), body: str = "", ctype: str = "",
             call_id: str | None = None, budget: float = 10) -> tuple[str, str]:
        """An out-of-dialog request; returns (final response, Call-ID)."""
        call_id = call_id or uuid.uuid4().hex
        tag = uuid.uuid4().hex[:8]
        auth = None
        for _ in range(2):
            self.cseq += 1
            lines = [
                f"{method} {uri} SIP/2.0",
                f"Via: SIP/2.0/TCP {self.local};branch=z9hG4bK{uuid.uuid4().hex};rport",
                "Max-Forwards: 70",
                f"From: <sip:{self.user}@{DOMAIN}>;tag={tag}",
                f"To: <{uri}>",
                f"Call-ID: {call_id}",
                f"CSeq: {self.cseq} {method}",
                f"Contact: <sip:{self.user}@{self.local};transport=tcp>",
                *headers,
            ]
            if auth:
                lines.append(f"Proxy-Authorization: {auth}")
            if ctype:
                lines.append(f"Content-Type: {ctype}")
            data = body.encode()
            lines.append(f"Content-Length: {len(data)}")
            sent = time.monotonic()
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
            r = self.response(call_id, method, budget)
            self.last_elapsed = time.monotonic() - sent
            if r.startswith("SIP/2.0 407") and auth is None:
                challenge = re.search(r"(?im)^Proxy-Authenticate:\s*(.+)$", r).group(1)
                auth = self._digest(challenge, method, uri)
                continue
            return r, call_id
        return r, call_id

    def in_dialog(self, method: str, response: str, uri: str, seq: int | None = None):
        """ACK (or, with `seq`, another request such as BYE) in the dialog a 2xx made."""
        to = re.search(r"(?m)^To: (.+)\r$", response).group(1)
        frm = re.search(r"(?m)^From: (.+)\r$", response).group(1)
        call_id = re.search(r"(?m)^Call-ID: (.+)\r$", response).group(1)
        n = seq if seq is not None else re.search(r"(?m)^CSeq: (\d+)", response).group(1)
        req = (f"{method} {uri} SIP/2.0\r\nVia: SIP/2.0/TCP {self.local};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: {frm}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {n} {method}\r\n"
               "Content-Length: 0\r\n\r\n")
        self.sock.sendall(req.encode())
        return call_id

    def ack(self, response: str, uri: str):
        to = re.search(r"(?m)^To: (.+)\r$", response).group(1)
        frm = re.search(r"(?m)^From: (.+)\r$", response).group(1)
        call_id = re.search(r"(?m)^Call-ID: (.+)\r$", response).group(1)
        seq = re.search(r"(?m)^CSeq: (\d+)", response).group(1)
        ack = (f"ACK {uri} SIP/2.0\r\nVia: SIP/2.0/TCP {self.local};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: {frm}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {seq} ACK\r\n"
               "Content-Length: 0\r\n\r\n")
        self.sock.sendall(ack.encode())


def silent_offer(port: int = 4000) -> str:
    """An SDP offer of PCMU at a port nothing is sent from (a participant that never sends RTP)."""
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            "a=sendrecv\r\n")


def roster(notify: str) -> dict[str, str]:
    """user entity → endpoint status (or `deleted`) in one conference-info body."""
    out = {}
    for m in re.finditer(r'<user entity="([^"]+)" state="(\w+)">(.*?)</user>', notify, re.S):
        status = re.search(r"<status>([\w-]+)</status>", m.group(3))
        out[m.group(1)] = "deleted" if m.group(2) == "deleted" else (status.group(1) if status else "?")
    return out


# ---------------------------------------------------------------- audio


def read_samples(path: Path) -> list[int]:
    with wave.open(str(path), "rb") as w:
        ch, width, n = w.getnchannels(), w.getsampwidth(), w.getnframes()
        raw = w.readframes(n)
    assert width == 2
    return list(struct.unpack(f"<{len(raw) // 2}h", raw)[::ch])


def share(samples: list[int], hz: float) -> float:
    """The share of the signal's power at `hz`, averaged over 100 ms windows (Goertzel)."""
    w = 2 * math.pi * hz / 8000
    c = 2 * math.cos(w)
    shares = []
    for i in range(0, len(samples) - 800, 800):
        s1 = s2 = e = 0.0
        for x in samples[i:i + 800]:
            e += x * x
            s1, s2 = x + c * s1 - s2, s1
        if e > 0:
            shares.append(2 * (s1 * s1 + s2 * s2 - c * s1 * s2) / (800 * e))
    return sum(shares) / len(shares) if shares else 0.0


def loud(samples: list[int]) -> list[int]:
    idx = [i for i, s in enumerate(samples) if abs(s) > 1500]
    return samples[idx[0]: idx[-1] + 1] if idx else []


# ---------------------------------------------------------------- the test


@pytest.mark.timeout(240)
def test_three_clients_mix_roster_im_lobby_and_end(ns_tandem, netns, tmp_path):
    need("baresip")
    t = ns_tandem
    sip = sip_endpoint(t)
    ok(t.run("user", "add", "dave", "--display-name", "Dave Davis", "--password-stdin", *t.location,
             input=DEMO_PASSWORD + "\n", timeout=20))
    conf = new_conference(t, "--organizer", f"sip:alice@{DOMAIN}", "--attendees", "bob,carol",
                          "--subject", "Quarterly plan")
    focus = conf["FocusUri"]
    assert re.fullmatch(rf"sip:alice@{re.escape(DOMAIN)};gruu;opaque=app:conf:focus:id:[A-Z0-9]{{8}}", focus), focus
    assert conf["AccessLevel"] == "Invited" and conf["Attendees"] == [f"sip:bob@{DOMAIN}", f"sip:carol@{DOMAIN}"]
    listed = json.loads(ok(t.run("cs", "get-conference", "--organizer", "alice", "--json", *t.location)).stdout)
    assert [c["ConferenceId"] for c in listed] == [conf["ConferenceId"]]

    peers = Peers(tmp_path / "ns-peers", prefix=netns.prefix)
    try:
        # The roster's watcher: Alice over TCP.
        watcher = SipTcp(netns.connect(sip[0], sip[1]), "alice", DEMO_PASSWORD)
        r, _ = watcher.send("SUBSCRIBE", focus, ["Event: presence", "Expires: 600"])
        assert r.startswith("SIP/2.0 489"), r.splitlines()[0]
        r, watch_id = watcher.send("SUBSCRIBE", focus, ["Event: conference", "Expires: 600",
                                                        "Accept: application/conference-info+xml"])
        assert r.startswith("SIP/2.0 200"), r
        first = watcher.wait_request(lambda m: m.startswith("NOTIFY") and watch_id in m, "the full-state NOTIFY")
        assert 'state="full"' in first and "<subject>Quarterly plan</subject>" in first, first

        tones = {}
        for who, hz in TONES.items():
            tones[who] = tmp_path / f"tone-{who}.wav"
            write_tone(tones[who], hz)
        clients = {who: Baresip(peers, netns, who, DEMO_PASSWORD, sip, ["conference"], tones[who], [focus])
                   for who in TONES}
        for ua in clients.values():
            ua.wait_registered(25)
        joined_at = time.monotonic()
        for who, ua in clients.items():
            ua.command("dial", focus)
        for who, ua in clients.items():
            ua.wait_event(lambda e: e.get("class") == "call" and e.get("type") == "CALL_ESTABLISHED",
                          f"{who}'s CALL_ESTABLISHED", 20)
        join_s = time.monotonic() - joined_at

        # The roster: the three connected, Dave waiting in the lobby.
        def latest() -> dict[str, str]:
            state: dict[str, str] = {}
            for m in watcher.requests:
                if m.startswith("NOTIFY") and watch_id in m:
                    state.update(roster(m))
            return state

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and latest().get(f"sip:dave@{DOMAIN}") != "pending":
            watcher._read(0.5)
        seen = latest()
        assert seen.get(f"sip:dave@{DOMAIN}") == "pending", seen
        for who in ("alice", "bob", "carol"):
            assert seen.get(f"sip:{who}@{DOMAIN}") == "connected", seen

        # A second endpoint of Bob's that never sends RTP.
        silent = SipTcp(netns.connect(sip[0], sip[1]), "bob", DEMO_PASSWORD)
        r, _ = silent.send("INVITE", focus, body=silent_offer(), ctype="application/sdp")
        assert r.startswith("SIP/2.0 200") and "m=audio" in r, r
        silent.ack(r, focus)

        # Conference IM: Bob's MESSAGE to the focus reaches Alice and Carol, From Bob.
        text = f"agenda-{uuid.uuid4().hex[:8]}"
        # (From Bob's second endpoint: baresip 1.0.0's `message` drops the focus URI's parameters.)
        r, _ = silent.send("MESSAGE", focus, body=text, ctype="text/plain")
        assert r.startswith("SIP/2.0 200"), r
        for who in ("alice", "carol"):
            clients[who].wait_text(rf"MESSAGE sip:[^\n]*\n(?:[^\n]*\n)*?From: [^\n]*sip:bob@{re.escape(DOMAIN)}"
                                   rf".*?{text}", f"{who}: the relayed MESSAGE", 15)

        time.sleep(5.0)  # audio mixed for a while
        # Dave has not heard anything: nothing is sent to the lobby.
        assert text not in clients["dave"].output(), "a message reached the lobby"

        # Alice admits Dave: REFER to the focus with Refer-To Dave.
        r, _ = watcher.send("REFER", focus, [f"Refer-To: <sip:dave@{DOMAIN}>", f"Referred-By: <sip:alice@{DOMAIN}>",
                                             "Refer-Sub: false"])
        assert r.startswith("SIP/2.0 202"), r
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and latest().get(f"sip:dave@{DOMAIN}") != "connected":
            watcher._read(0.5)
        assert latest().get(f"sip:dave@{DOMAIN}") == "connected", latest()
        # Bob may not admit anyone.
        bob_tcp = silent
        r, _ = bob_tcp.send("REFER", focus, [f"Refer-To: <sip:carol@{DOMAIN};method=BYE>"])
        assert r.startswith("SIP/2.0 403"), r

        # Removing the conference ends it: every client gets a BYE.
        ok(t.run("cs", "remove-conference", "--id", conf["ConferenceId"], *t.location))
        for who, ua in clients.items():
            ua.wait_event(lambda e: e.get("class") == "call" and e.get("type") == "CALL_CLOSED",
                          f"{who}'s CALL_CLOSED after the conference was removed", 20)
        silent.wait_request(lambda m: m.startswith("BYE"), "the BYE of the silent endpoint", 10)
        watcher.wait_request(lambda m: m.startswith("NOTIFY") and "terminated" in m, "the last NOTIFY", 10)
        time.sleep(0.5)

        # Each heard the two others and not itself; nobody heard Dave, who was in the lobby.
        for who in ("alice", "bob", "carol"):
            dumps = sorted(glob.glob(str(clients[who].dir / "rec" / "*dec*.wav")))
            assert dumps, f"{who} recorded nothing: {list((clients[who].dir / 'rec').iterdir())}"
            heard = loud(read_samples(Path(dumps[-1])))
            assert len(heard) > 8000 * 3, f"{who} heard only {len(heard) / 8000:.1f} s"
            # The part before Dave was admitted (the first 4 s of sound).
            part = heard[:8000 * 4]
            shares = {o: share(part, hz) for o, hz in TONES.items()}
            for other in ("alice", "bob", "carol"):
                if other == who:
                    assert shares[other] < 0.05, f"{who} hears their own tone: {shares}"
                else:
                    assert shares[other] > 0.15, f"{who} does not hear {other}: {shares}"
            assert shares["dave"] < 0.05, f"{who} hears Dave from the lobby: {shares}"
        print(f"join time for four clients (dial to CALL_ESTABLISHED): {join_s:.2f} s")
    finally:
        peers.kill_all()


@pytest.mark.timeout(120)
def test_bad_input_unknown_conference_and_a_flood_of_joins(ns_tandem, netns):
    t = ns_tandem
    sip = sip_endpoint(t)
    conf = new_conference(t, "--organizer", "alice", "--attendees", "bob")
    focus = conf["FocusUri"]
    bob = SipTcp(netns.connect(sip[0], sip[1]), "bob", DEMO_PASSWORD)
    unknown = focus[: -8] + "ZZZZZZZZ"
    r, _ = bob.send("INVITE", unknown, body=silent_offer(), ctype="application/sdp")
    assert r.startswith("SIP/2.0 404"), r
    # Another organizer's URI with a real id is not that conference either.
    r, _ = bob.send("INVITE", focus.replace("sip:alice@", "sip:bob@"), body=silent_offer(), ctype="application/sdp")
    assert r.startswith("SIP/2.0 404"), r
    r, _ = bob.send("INVITE", focus, body="not sdp", ctype="application/sdp")
    assert r.startswith("SIP/2.0 400"), r
    # One user's joins past the per-user limit are refused 486; the ones before stay in.
    statuses = []
    for i in range(6):
        r, _ = bob.send("INVITE", focus, body=silent_offer(4000 + 2 * i), ctype="application/sdp")
        statuses.append(int(r.split()[1]))
        if statuses[-1] == 200:
            bob.ack(r, focus)
    assert statuses == [200, 200, 200, 200, 486, 486], statuses
    # A MESSAGE from someone not in the conference is refused.
    carol = SipTcp(netns.connect(sip[0], sip[1]), "carol", DEMO_PASSWORD)
    r, _ = carol.send("MESSAGE", focus, body="hi", ctype="text/plain")
    assert r.startswith("SIP/2.0 403"), r
    # The organizer ends it by REFER to the focus itself with method=BYE: all four get a BYE.
    alice = SipTcp(netns.connect(sip[0], sip[1]), "alice", DEMO_PASSWORD)
    r, _ = alice.send("REFER", focus, [f"Refer-To: <{focus};method=BYE>", "Refer-Sub: false"])
    assert r.startswith("SIP/2.0 202"), r
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sum(m.startswith("BYE") for m in bob.requests) < 4:
        bob._read(0.5)
    assert sum(m.startswith("BYE") for m in bob.requests) == 4, bob.requests
