"""Presence from the calendar (issue 11): exchangelib changes Bob's mailbox over EWS, and a SIP
watcher subscribed to Bob gets the NOTIFY the Front End derives from it, with no client of Bob's
publishing anything calendar-related. The watcher (and Bob's hand-set PUBLISH) is a small SIP
user agent over UDP with RFC 2617/7616 digest, so the test can keep the dialog open while it acts
on the mailbox; SIPp's static scenarios cannot interleave with exchangelib.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_calendar_presence.py -q
"""

from __future__ import annotations

import datetime
import hashlib
import os
import random
import re
import socket
import threading
import time
from typing import Callable, Optional

import pytest

from conftest import DEMO_PASSWORD, DOMAIN, Tandem
from test_oauth import wait_trust

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
BOB_SIP = f"sip:bob@{DOMAIN}"


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


class Agent:
    """A SIP user agent on UDP: sends requests with digest auth, answers NOTIFYs with 200 and
    keeps their bodies."""

    def __init__(self, t: Tandem, user: str):
        self.user = user
        self.remote = ("127.0.0.1", t.sip_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.tag = f"{random.getrandbits(32):x}"
        self.cseq = 0
        self.etag: Optional[str] = None
        self.responses: list[str] = []
        self.notifies: list[str] = []
        self.lock = threading.Condition()
        self.stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def close(self):
        if self.etag:
            # Withdraw the publication (RFC 3903 §4.5), so the next test starts from none.
            me = f"sip:{self.user}@{DOMAIN}"
            self.request("PUBLISH", me, me, ["Event: presence", f"SIP-If-Match: {self.etag}", "Expires: 0"])
            self.etag = None
        self.stop = True
        self.thread.join(timeout=2)
        self.sock.close()

    def _loop(self):
        while not self.stop:
            try:
                data, _ = self.sock.recvfrom(65535)
            except (socket.timeout, OSError):
                continue
            msg = data.decode(errors="replace")
            if msg.startswith("NOTIFY "):
                self._answer(msg)
                with self.lock:
                    self.notifies.append(msg)
                    self.lock.notify_all()
            elif msg.startswith("SIP/2.0"):
                with self.lock:
                    self.responses.append(msg)
                    self.lock.notify_all()

    def _answer(self, req: str):
        head = req.split("\r\n\r\n", 1)[0].split("\r\n")
        keep = [h for h in head[1:] if re.match(r"(Via|v|From|f|To|t|Call-ID|i|CSeq):", h, re.I)]
        resp = "SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n"
        self.sock.sendto(resp.encode(), self.remote)

    def _send(self, method: str, uri: str, to: str, call_id: str, headers: list[str], body: str,
              auth: Optional[str], to_tag: Optional[str] = None) -> str:
        self.cseq += 1
        branch = f"z9hG4bK{random.getrandbits(48):x}"
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{DOMAIN}>;tag={self.tag}",
            f"To: <{to}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call_id}",
            f"CSeq: {self.cseq} {method}",
            f"Contact: <sip:{self.user}@127.0.0.1:{self.port}>",
            *headers,
        ]
        if auth:
            lines.append(auth)
        lines.append(f"Content-Length: {len(body.encode())}")
        msg = "\r\n".join(lines) + "\r\n\r\n" + body
        with self.lock:
            seen = len(self.responses)
        self.sock.sendto(msg.encode(), self.remote)
        deadline = time.monotonic() + 5
        with self.lock:
            while True:
                for r in self.responses[seen:]:
                    if re.search(rf"^CSeq:\s*{self.cseq} {method}", r, re.M | re.I) and not r.startswith("SIP/2.0 1"):
                        return r
                left = deadline - time.monotonic()
                assert left > 0, f"no final answer to {method}:\n{msg}"
                self.lock.wait(left)

    def request(self, method: str, uri: str, to: str, headers: list[str], body: str = "",
                to_tag: Optional[str] = None, call_id: Optional[str] = None) -> tuple[str, str]:
        """Sends a request, answering a 401 with digest; returns (final response, Call-ID)."""
        call_id = call_id or f"{random.getrandbits(64):x}@127.0.0.1"
        r = self._send(method, uri, to, call_id, headers, body, None, to_tag)
        if r.startswith("SIP/2.0 401") or r.startswith("SIP/2.0 407"):
            proxy = r.startswith("SIP/2.0 407")
            name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
            ch = re.search(rf"^{name}:\s*Digest (.*)$", r, re.M | re.I).group(1)
            p = dict(re.findall(r'(\w+)="?([^",]+)"?', ch))
            ha1 = md5(f"{self.user}:{p['realm']}:{DEMO_PASSWORD}")
            ha2 = md5(f"{method}:{uri}")
            cnonce, nc = f"{random.getrandbits(32):x}", "00000001"
            if "qop" in p:
                resp = md5(f"{ha1}:{p['nonce']}:{nc}:{cnonce}:auth:{ha2}")
                extra = f", qop=auth, nc={nc}, cnonce=\"{cnonce}\""
            else:
                resp, extra = md5(f"{ha1}:{p['nonce']}:{ha2}"), ""
            header = "Proxy-Authorization" if proxy else "Authorization"
            auth = (f'{header}: Digest username="{self.user}", realm="{p["realm"]}", nonce="{p["nonce"]}", '
                    f'uri="{uri}", response="{resp}", algorithm=MD5{extra}')
            r = self._send(method, uri, to, call_id, headers, body, auth, to_tag)
        return r, call_id

    def subscribe(self, target: str):
        r, _ = self.request("SUBSCRIBE", target, target,
                            ["Event: presence", "Accept: application/pidf+xml", "Expires: 600"])
        assert r.startswith("SIP/2.0 200") or r.startswith("SIP/2.0 202"), r

    def publish(self, pidf: str, expires: int = 600) -> str:
        me = f"sip:{self.user}@{DOMAIN}"
        r, _ = self.request("PUBLISH", me, me,
                            ["Event: presence", "Content-Type: application/pidf+xml", f"Expires: {expires}"], pidf)
        assert r.startswith("SIP/2.0 200"), r
        m = re.search(r"^SIP-ETag:\s*(\S+)", r, re.M | re.I)
        self.etag = m.group(1) if m else None
        return r

    def wait_notify(self, want: Callable[[str], bool], budget: float, what: str) -> tuple[str, float]:
        """The first NOTIFY body (received from now on, or the latest one so far) for which
        `want` holds; returns it and the seconds it took."""
        start = time.monotonic()
        deadline = start + budget
        with self.lock:
            i = max(len(self.notifies) - 1, 0)
            while True:
                for n in self.notifies[i:]:
                    if want(body_of(n)):
                        return body_of(n), time.monotonic() - start
                i = len(self.notifies)
                left = deadline - time.monotonic()
                if left <= 0:
                    last = body_of(self.notifies[-1]) if self.notifies else "(none)"
                    pytest.fail(f"no NOTIFY with {what} within {budget:g} s; the last one:\n{last}", pytrace=False)
                self.lock.wait(left)


def body_of(notify: str) -> str:
    return notify.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in notify else ""


def in_meeting(body: str) -> bool:
    return "<rpid:meeting/>" in body and "<basic>open</basic>" in body and "In a meeting" in body


def account(ews: str, address: str):
    from exchangelib import BASIC, DELEGATE, Account, Configuration, Credentials, EWSTimeZone

    creds = Credentials(address, DEMO_PASSWORD)
    config = Configuration(service_endpoint=ews, credentials=creds, auth_type=BASIC)
    return Account(address, credentials=creds, config=config, autodiscover=False, access_type=DELEGATE,
                   default_timezone=EWSTimeZone("UTC"))


def book(bob, subject: str, start_in: float, minutes: float, **kw):
    from exchangelib import CalendarItem, EWSDateTime, EWSTimeZone

    now = EWSDateTime.now(tz=EWSTimeZone("UTC")).replace(microsecond=0)
    start = now + datetime.timedelta(seconds=start_in)
    item = CalendarItem(account=bob, folder=bob.calendar, subject=subject, location="Room 42", start=start,
                        end=start + datetime.timedelta(minutes=minutes), legacy_free_busy_status="Busy", **kw)
    item.save()
    return item


@pytest.fixture(scope="module")
def deployment(tandem_bin, tmp_path_factory):
    t = Tandem(tandem_bin, tmp_path_factory.mktemp("calendar-presence"))
    t.start()
    wait_trust(t)
    st = t.status()
    os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
    yield t, st["mailbox"]["ews_url"]
    t.kill_all()
    from exchangelib.protocol import close_connections

    close_connections()


@pytest.fixture
def watcher(deployment):
    t, _ = deployment
    a = Agent(t, "alice")
    a.subscribe(BOB_SIP)
    yield a
    a.close()


@pytest.fixture
def bob(deployment):
    _, ews = deployment
    acc = account(ews, BOB)
    yield acc
    for item in acc.calendar.all():
        item.delete()


def presence(t: Tandem, until: Optional[Callable[[dict], bool]] = None, budget: float = 5) -> dict:
    """`tandem cs get-presence` for Bob; with `until`, the first answer (within `budget`, as the
    Front End records what it shows within a second) for which it holds."""
    import json

    deadline = time.monotonic() + budget
    while True:
        r = t.run("cs", "get-presence", "--identity", BOB_SIP, "--json", *t.location)
        assert r.returncode == 0, r.stderr
        p = json.loads(r.stdout)
        if until is None or until(p) or time.monotonic() > deadline:
            return p
        time.sleep(0.3)


def test_a_meeting_now_shows_and_deleting_it_drops_it(deployment, watcher, bob):
    t, ews = deployment
    # Carol watches Alice too: two watched mailboxes behind one EWS URL. The Front End asks for
    # both subscriptions on one GetStreamingEvents connection; a mailbox that accepts only the
    # caller's own subscriptions answers an error, and it falls back to one connection each.
    carol = Agent(t, "carol")
    carol.subscribe(f"sip:alice@{DOMAIN}")
    # Bob has no endpoint: offline to begin with.
    watcher.wait_notify(lambda b: "<basic>closed</basic>" in b, 10, "Bob offline")
    # An offline user in a meeting stays offline; sign Bob in (a PUBLISH of "available").
    agent = Agent(t, "bob")
    try:
        agent.publish(pidf_doc("open", None, None))
        watcher.wait_notify(lambda b: "<basic>open</basic>" in b and "meeting" not in b, 10, "Bob available")
        item = book(bob, "Quarterly numbers", -60, 30)
        body, took = watcher.wait_notify(in_meeting, 5, "the meeting activity")
        assert "Quarterly numbers" not in body, f"the subject is private unless the policy allows it:\n{body}"
        print(f"meeting → NOTIFY in {took:.2f} s")
        p = presence(t, lambda p: p.get("Activity") == "meeting")
        assert p["Activity"] == "meeting" and p["Calendar"] == "watching", p
        assert "busy calendar item" in p["Reason"], p
        item.delete()
        watcher.wait_notify(lambda b: "meeting" not in b and "<basic>open</basic>" in b, 5, "the meeting dropped")
        # Alice's calendar is watched as well, over its own connection or a shared one.
        alice = Agent(t, "alice")
        try:
            alice.publish(pidf_doc("open", None, None))
            alice_item = book(account(ews, ALICE), "Alice's review", -60, 30)
            carol.wait_notify(in_meeting, 5, "Alice's meeting")
            alice_item.delete()
        finally:
            alice.close()
        import requests

        metrics = requests.get(f"https://127.0.0.1:{t.frontend_https_port}/metrics", verify=str(t.pki_dir / "ca.pem"),
                               timeout=10).text
        m = re.search(r"^tandem_calendar_presence_stream_connections (\d+)", metrics, re.M)
        assert m and 1 <= int(m.group(1)) <= 2, "\n".join(l for l in metrics.splitlines() if "stream" in l or "connections" in l)
    finally:
        agent.close()
        carol.close()


def test_out_of_office_shows_the_first_line_of_the_internal_reply(deployment, watcher, bob):
    from exchangelib import OofSettings

    t, _ = deployment
    # Pushed, not polled: the Mailbox reports the Inbox modified when the settings change (a
    # ModifiedEvent on the watch's msgfolderroot subscription), and the watcher hears within a
    # second or two. The client policy's WebServicePollInterval stays at its five minutes.
    bob.oof_settings = OofSettings(state=OofSettings.ENABLED, internal_reply="On holiday until Monday\nAsk Carol",
                                   external_reply="Away")
    body, took = watcher.wait_notify(lambda b: "On holiday until Monday" in b, 3, "the OOF note")
    print(f"automatic replies on → NOTIFY in {took:.2f} s")
    # Bob is not signed in: shown offline with the note, as Skype for Business does.
    assert "<basic>closed</basic>" in body and "Ask Carol" not in body, body
    agent = Agent(t, "bob")
    try:
        agent.publish(pidf_doc("open", None, None))
        body, _ = watcher.wait_notify(lambda b: "<rpid:vacation/>" in b, 10, "the vacation activity")
        assert "<basic>open</basic>" in body and "On holiday until Monday" in body, body
    finally:
        agent.close()
    bob.oof_settings = OofSettings(state=OofSettings.DISABLED, internal_reply="", external_reply="")
    watcher.wait_notify(lambda b: "On holiday" not in b, 3, "the OOF note gone")


def test_off_work_outside_working_hours_when_the_policy_shows_it(deployment, watcher, bob):
    t, _ = deployment
    agent = Agent(t, "bob")
    # Working hours that exclude now (a one-minute slot twelve hours away, every day), as
    # Outlook writes them into the Calendar's WorkHours configuration.
    now = datetime.datetime.now(datetime.timezone.utc)
    start = (now + datetime.timedelta(hours=12)).replace(second=0, microsecond=0)
    end = start + datetime.timedelta(minutes=1)
    hours = ('<?xml version="1.0"?><Root xmlns="WorkingHours.xsd"><WorkHoursVersion1><TimeZone><Bias>0</Bias>'
             "<Name>UTC</Name></TimeZone>"
             f"<TimeSlot><Start>{start:%H:%M:00}</Start><End>{end:%H:%M:00}</End></TimeSlot>"
             "<WorkDays>Sunday Monday Tuesday Wednesday Thursday Friday Saturday</WorkDays>"
             "</WorkHoursVersion1></Root>")
    bob.calendar.create_user_configuration("WorkHours", xml_data=hours.encode())
    try:
        agent.publish(pidf_doc("open", None, None))
        watcher.wait_notify(lambda b: "<basic>open</basic>" in b and "Off Work" not in b, 10, "Bob available")
        ok = t.run("cs", "set-client-policy", "--enable-off-work-presence", "true", *t.location)
        assert ok.returncode == 0, ok.stderr
        body, _ = watcher.wait_notify(lambda b: "Off Work" in b, 5, "Off Work")
        assert "<rpid:away/>" in body and "<basic>open</basic>" in body, body
        p = presence(t, lambda p: p.get("Note") == "Off Work")
        assert p["Availability"] == "away" and "outside working hours" in p["Reason"], p
        # Working hours that include now: Outlook updates the configuration; pushed as well.
        around = ('<?xml version="1.0"?><Root xmlns="WorkingHours.xsd"><WorkHoursVersion1><TimeZone><Bias>0</Bias>'
                  "</TimeZone><TimeSlot><Start>00:00:00</Start><End>23:59:00</End></TimeSlot>"
                  "<WorkDays>Sunday Monday Tuesday Wednesday Thursday Friday Saturday</WorkDays>"
                  "</WorkHoursVersion1></Root>")
        if now.hour == 23 and now.minute >= 58:
            pytest.skip("too close to midnight for a working day that includes now")
        bob.calendar.update_user_configuration("WorkHours", xml_data=around.encode())
        watcher.wait_notify(lambda b: "Off Work" not in b and "<basic>open</basic>" in b, 3, "back at work")
    finally:
        t.run("cs", "set-client-policy", "--enable-off-work-presence", "false", *t.location)
        bob.calendar.delete_user_configuration("WorkHours")
        agent.close()


def test_a_status_set_by_hand_is_never_overridden(deployment, watcher, bob):
    t, _ = deployment
    agent = Agent(t, "bob")
    try:
        agent.publish(pidf_doc("open", "busy", "Do not disturb"))
        watcher.wait_notify(lambda b: "<rpid:busy/>" in b and "Do not disturb" in b, 10, "Bob's do-not-disturb")
        book(bob, "Standup", -30, 15)
        # Give the calendar time to act (it reacts within a second), then check it did not.
        time.sleep(3)
        p = presence(t, lambda p: "set by hand" in p.get("Reason", ""))
        assert p["Availability"] == "busy" and p["Activity"] is None, p
        assert "set by hand" in p["Reason"], p
        with watcher.lock:
            last = body_of(watcher.notifies[-1])
        assert "<rpid:busy/>" in last and "meeting" not in last and "Do not disturb" in last, last
    finally:
        agent.close()


def test_a_private_meeting_never_shows_its_subject(deployment, watcher, bob):
    t, _ = deployment
    ok = t.run("cs", "set-client-policy", "--identity", BOB_SIP, "--disable-meeting-subject-and-location", "false",
               *t.location)
    assert ok.returncode == 0, ok.stderr
    agent = Agent(t, "bob")
    try:
        agent.publish(pidf_doc("open", None, None))
        item = book(bob, "Design review", -60, 30)
        body, _ = watcher.wait_notify(lambda b: "Design review" in b, 5, "the allowed subject")
        assert "Room 42" in body and in_meeting(body), body
        item.delete()
        watcher.wait_notify(lambda b: "meeting" not in b, 5, "the meeting dropped")
        book(bob, "Salary talk", -60, 30, sensitivity="Private")
        body, _ = watcher.wait_notify(in_meeting, 5, "the private meeting")
        assert "Salary talk" not in body and "Room 42" not in body, body
        p = presence(t, lambda p: "private" in p.get("Reason", ""))
        assert "Salary" not in str(p) and "private calendar item" in p["Reason"], p
    finally:
        agent.close()
        t.run("cs", "set-client-policy", "--identity", BOB_SIP, "--disable-meeting-subject-and-location", "true",
              *t.location)


def test_a_meeting_starting_in_20_s_flips_presence_when_it_starts(deployment, watcher, bob):
    t, _ = deployment
    agent = Agent(t, "bob")
    try:
        agent.publish(pidf_doc("open", None, None))
        watcher.wait_notify(lambda b: "<basic>open</basic>" in b and "meeting" not in b, 10, "Bob available")
        item = book(bob, "Later", 20, 10)
        booked = time.monotonic()
        time.sleep(2)
        with watcher.lock:
            assert not in_meeting(body_of(watcher.notifies[-1])), "the meeting has not started yet"
        body, _ = watcher.wait_notify(in_meeting, 30, "the meeting starting")
        started_after = time.monotonic() - booked
        assert 17 <= started_after <= 24, f"the meeting started after {started_after:.1f} s, booked for 20 s"
        item.delete()
    finally:
        agent.close()


def test_calendar_presence_can_be_turned_off_without_a_restart(deployment, watcher, bob):
    t, _ = deployment
    agent = Agent(t, "bob")
    try:
        agent.publish(pidf_doc("open", None, None))
        book(bob, "Offsite", -60, 30)
        watcher.wait_notify(in_meeting, 5, "the meeting")
        ok = t.run("cs", "set-client-policy", "--disable-calendar-presence", "true", *t.location)
        assert ok.returncode == 0, ok.stderr
        watcher.wait_notify(lambda b: "meeting" not in b, 5, "the meeting gone (policy off)")
        assert presence(t, lambda p: p["Calendar"] == "disabled")["Calendar"] == "disabled"
        ok = t.run("cs", "set-client-policy", "--disable-calendar-presence", "false", *t.location)
        watcher.wait_notify(in_meeting, 10, "the meeting back (policy on)")
        r = t.run("cs", "set-client-policy", "--identity", "sip:nobody@" + DOMAIN, "--disable-calendar-presence",
                  "true", *t.location)
        assert r.returncode == 2 and "no such user" in r.stderr, r
    finally:
        agent.close()


def test_a_mailbox_failure_falls_back_and_recovers(deployment, watcher, bob):
    """The mailbox refuses the Front End's tokens (its partner application disabled): presence
    falls back to the endpoints, integration status names the failure, and the watch comes back
    by itself when the mailbox accepts tokens again."""
    import json

    t, _ = deployment
    agent = Agent(t, "bob")
    try:
        agent.publish(pidf_doc("open", None, None))
        book(bob, "Before the outage", -60, 30)
        watcher.wait_notify(in_meeting, 5, "the meeting")
        # Break the trust and make the watch start over (a mailbox restart does the same).
        assert t.run("exchange", "set-partner-application", "--name", "Lync", "--enabled", "false",
                     *t.location).returncode == 0
        ok = t.run("cs", "set-client-policy", "--disable-calendar-presence", "true", *t.location)
        assert ok.returncode == 0
        watcher.wait_notify(lambda b: "meeting" not in b, 5, "the meeting gone")
        t.run("cs", "set-client-policy", "--disable-calendar-presence", "false", *t.location)
        deadline = time.monotonic() + 15
        while True:
            p = presence(t)
            if p["Calendar"] == "failing":
                break
            assert time.monotonic() < deadline, p
            time.sleep(0.5)
        assert "Token" in (p["CalendarError"] or ""), p
        assert p["Activity"] is None and p["Availability"] == "available", "falls back to the endpoints"
        st = json.loads(t.run("integration", "status", "--json", *t.location).stdout)
        cal = next(s for s in st["steps"] if s["step"] == "cal")
        assert cal["status"] != "pass" and BOB_SIP in cal["reason"], cal
        port = t.frontend_https_port
        import requests

        ca = str(t.pki_dir / "ca.pem")
        metrics = requests.get(f"https://127.0.0.1:{port}/metrics", verify=ca, timeout=10).text
        assert re.search(r'tandem_calendar_presence_failures_total\{hop="token"\} [1-9]', metrics), metrics[-3000:]
        # The mailbox accepts tokens again: the watch comes back by itself (backoff ≤ 60 s;
        # here it has failed a few times, so within ~10 s).
        assert t.run("exchange", "set-partner-application", "--name", "Lync", "--enabled", "true",
                     *t.location).returncode == 0
        watcher.wait_notify(in_meeting, 40, "the meeting back after the outage")
        assert presence(t, lambda p: p["Calendar"] == "watching")["Calendar"] == "watching"
    finally:
        agent.close()


def pidf_doc(basic: str, activity: Optional[str], note: Optional[str]) -> str:
    act = f"<dm:person id=\"p1\"><rpid:activities><rpid:{activity}/></rpid:activities></dm:person>" if activity else ""
    n = f"<note>{note}</note>" if note else ""
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
            f'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="{BOB_SIP}">'
            f'<tuple id="t1"><status><basic>{basic}</basic></status></tuple>{act}{n}</presence>')
