"""EWS push subscriptions: exchangelib subscribes (`folder.subscribe_to_push`), the Mailbox POSTs
SendNotification to a small receiver (Python's http.server) that reads each body with exchangelib's
own `SendNotification` parser and answers with its `ok_payload()` / `unsubscribe_payload()`, as
exchangelib's documentation shows a receiver doing.

The deployment runs with `mailbox.ews_push_minute_seconds = 2`: one StatusFrequency minute lasts
2 s (Exchange: 60 s), so a StatusEvent, the 30 s / 60 s retries and the drop after StatusFrequency
happen within seconds.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_ews_push.py -q
"""

from __future__ import annotations

import os
import threading
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import DEMO_PASSWORD, DOMAIN, Tandem

M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
S = "http://schemas.xmlsoap.org/soap/envelope/"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
MINUTE = 2.0  # seconds, as configured below


class Receiver:
    """An HTTP receiver: per path, the notifications received (parsed by exchangelib) and how to
    answer (`ok`, `unsubscribe`, `fail` with HTTP 500, `slow`: no answer for 30 s)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got: dict[str, list] = {}
        self.times: dict[str, list[float]] = {}
        self.mode: dict[str, str] = {}
        self.fail_first: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                from exchangelib.services import SendNotification

                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ws = SendNotification(protocol=None)
                notifications = list(ws.parse(body))
                path = self.path
                with receiver.lock:
                    receiver.got.setdefault(path, []).append(notifications)
                    receiver.times.setdefault(path, []).append(time.monotonic())
                    mode = receiver.mode.get(path, "ok")
                    left = receiver.fail_first.get(path, 0)
                    if left:
                        receiver.fail_first[path] = left - 1
                if mode == "slow":
                    time.sleep(30)
                if mode == "fail" or left:
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                payload = ws.unsubscribe_payload() if mode == "unsubscribe" else ws.ok_payload()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def posts(self, path):
        with self.lock:
            return list(self.got.get(path, []))

    def events(self, path):
        return [e for post in self.posts(path) for n in post for e in n.events]

    def wait(self, path, pred, budget=20.0):
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            if pred(self.posts(path)):
                return self.posts(path)
            time.sleep(0.1)
        raise AssertionError(f"{path}: condition not met; got {self.posts(path)}")


@pytest.fixture(scope="module")
def deployment(tandem_bin, tmp_path_factory):
    t = Tandem(tandem_bin, tmp_path_factory.mktemp("ews-push"), mailbox_extra="ews_push_minute_seconds = 2")
    t.start()
    st = t.status()
    os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
    yield {"t": t, "ews": st["mailbox"]["ews_url"], "ca": st["ca_certificate"]}
    t.kill_all()
    from exchangelib.protocol import close_connections

    close_connections()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def account(d, address=ALICE):
    from exchangelib import BASIC, DELEGATE, Account, Configuration, Credentials, EWSTimeZone

    creds = Credentials(address, DEMO_PASSWORD)
    config = Configuration(service_endpoint=d["ews"], credentials=creds, auth_type=BASIC)
    return Account(address, credentials=creds, config=config, autodiscover=False, access_type=DELEGATE,
                   default_timezone=EWSTimeZone("UTC"))


@pytest.fixture(scope="module")
def alice(deployment):
    return account(deployment)


@pytest.fixture(scope="module")
def bob(deployment):
    return account(deployment, BOB)


def soap(d, body, who=ALICE):
    env = (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}" xmlns:m="{M}" xmlns:t="{T}">'
           f'<s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body>{body}</s:Body></s:Envelope>')
    return requests.post(d["ews"], data=env.encode(), headers={"Content-Type": "text/xml; charset=utf-8"},
                         auth=(who, DEMO_PASSWORD), verify=d["ca"], timeout=30)


def codes(text):
    return [e.text for e in ET.fromstring(text).iter(f"{{{M}}}ResponseCode")]


def get_events_code(d, sub_id, who=ALICE):
    """GetEvents on a push subscription: ErrorInvalidSubscription while it lives (it is a push
    one), ErrorSubscriptionNotFound once it ended (or for another user)."""
    r = soap(d, who=who, body=f"<m:GetEvents><m:SubscriptionId>{sub_id}</m:SubscriptionId><m:Watermark>VFMxOjA=</m:Watermark></m:GetEvents>")
    return codes(r.text)[0]


def send_mail(frm, to, subject):
    from exchangelib import Message

    Message(account=frm, folder=frm.sent, subject=subject, body="push", to_recipients=[to]).send_and_save()


def test_push_delivers_events_and_status_events(deployment, receiver, alice, bob):
    sub_id, watermark = alice.inbox.subscribe_to_push(
        callback_url=receiver.url("/events"), event_types=["NewMailEvent", "CreatedEvent"], status_frequency=1)
    assert sub_id and watermark
    send_mail(bob, ALICE, "push one")
    posts = receiver.wait("/events", lambda p: any(e.ELEMENT_NAME == "NewMailEvent" for post in p for n in post for e in n.events))
    ev = next(e for e in receiver.events("/events") if e.ELEMENT_NAME == "NewMailEvent")
    item = alice.inbox.get(id=ev.item_id.id)
    assert item.subject == "push one"
    assert all(n.subscription_id == sub_id for post in posts for n in post)
    # With nothing happening, a StatusEvent once per StatusFrequency (1 minute = 2 s here).
    n_before = len(receiver.posts("/events"))
    receiver.wait("/events", lambda p: len(p) > n_before and any(e.ELEMENT_NAME == "StatusEvent" for n in p[-1] for e in n.events), budget=3 * MINUTE + 5)
    # A StatusEvent carries the watermark the next notification starts from.
    notes = [n for post in receiver.posts("/events") for n in post]
    for a, b in zip(notes, notes[1:]):
        if a.events[-1].ELEMENT_NAME == "StatusEvent":
            assert b.previous_watermark == a.events[-1].watermark
    assert get_events_code(deployment, sub_id) == "ErrorInvalidSubscription"


def test_receiver_unsubscribe_answer_ends_the_subscription(deployment, receiver, alice, bob):
    receiver.mode["/unsub"] = "unsubscribe"
    sub_id, _ = alice.inbox.subscribe_to_push(callback_url=receiver.url("/unsub"), event_types=["NewMailEvent"],
                                              status_frequency=1)
    send_mail(bob, ALICE, "push unsubscribe")
    receiver.wait("/unsub", lambda p: len(p) >= 1)
    time.sleep(0.5)
    assert get_events_code(deployment, sub_id) == "ErrorSubscriptionNotFound"
    send_mail(bob, ALICE, "after unsubscribe")
    time.sleep(2 * MINUTE + 1)
    assert len(receiver.posts("/unsub")) == 1


def test_failed_deliveries_are_retried_with_back_off_then_dropped(deployment, receiver, alice, bob):
    # Always failing: the notification, a retry after half a minute, one at a minute, then the
    # next (two minutes) is past StatusFrequency (1): dropped.
    receiver.mode["/fail"] = "fail"
    sub_id, _ = alice.inbox.subscribe_to_push(callback_url=receiver.url("/fail"), event_types=["NewMailEvent"],
                                              status_frequency=1)
    send_mail(bob, ALICE, "push to a failing receiver")
    receiver.wait("/fail", lambda p: len(p) >= 3, budget=4 * MINUTE + 10)
    times = receiver.times["/fail"]
    assert times[1] - times[0] >= 0.5 * MINUTE - 0.3
    assert times[2] - times[0] >= 1.0 * MINUTE - 0.3
    time.sleep(2 * MINUTE + 1)
    assert len(receiver.posts("/fail")) == 3
    assert get_events_code(deployment, sub_id) == "ErrorSubscriptionNotFound"
    # The same notification each time.
    first = [e.item_id.id for n in receiver.posts("/fail")[0] for e in n.events]
    assert all([e.item_id.id for n in p for e in n.events] == first for p in receiver.posts("/fail"))

    # Failing once: the retry delivers it and the subscription lives on.
    receiver.fail_first["/flaky"] = 1
    sub_id, _ = alice.inbox.subscribe_to_push(callback_url=receiver.url("/flaky"), event_types=["NewMailEvent"],
                                              status_frequency=1)
    send_mail(bob, ALICE, "push to a flaky receiver")
    posts = receiver.wait("/flaky", lambda p: len(p) >= 2, budget=2 * MINUTE + 5)
    new_mail = lambda post: [e.item_id.id for n in post for e in n.events if e.ELEMENT_NAME == "NewMailEvent"]  # noqa: E731
    assert new_mail(posts[0]) and new_mail(posts[1]) == new_mail(posts[0])  # the failed one, sent again
    assert get_events_code(deployment, sub_id) == "ErrorInvalidSubscription"
    seen = set(new_mail(posts[0]))
    send_mail(bob, ALICE, "push after the retry")
    receiver.wait("/flaky", lambda p: any(set(new_mail(post)) - seen for post in p[2:]))


def test_a_slow_receiver_does_not_stall_others(deployment, receiver, alice, bob):
    receiver.mode["/slow"] = "slow"
    slow_id, _ = alice.inbox.subscribe_to_push(callback_url=receiver.url("/slow"), event_types=["NewMailEvent"],
                                               status_frequency=1)
    fast_id, _ = bob.inbox.subscribe_to_push(callback_url=receiver.url("/fast"), event_types=["NewMailEvent"],
                                             status_frequency=1)
    send_mail(bob, ALICE, "to the slow one")
    receiver.wait("/slow", lambda p: len(p) >= 1)
    started = time.monotonic()
    send_mail(alice, BOB, "to the fast one")
    receiver.wait("/fast", lambda p: any(e.ELEMENT_NAME == "NewMailEvent" for post in p for n in post for e in n.events),
                  budget=8)
    assert time.monotonic() - started < 8
    assert get_events_code(deployment, fast_id, BOB) == "ErrorInvalidSubscription"
    assert get_events_code(deployment, fast_id) == "ErrorSubscriptionNotFound"  # not alice's


def test_push_subscribe_refuses_bad_urls_and_frequencies(deployment):
    def subscribe(url, freq="1"):
        return soap(deployment, '<m:Subscribe><m:PushSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="inbox"/>'
                    '</t:FolderIds><t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes>'
                    f'<t:StatusFrequency>{freq}</t:StatusFrequency><t:URL>{url}</t:URL></m:PushSubscriptionRequest></m:Subscribe>')

    for url in ["ftp://127.0.0.1/x", "file:///etc/passwd", "http://", "http://user:pw@127.0.0.1/", "javascript:alert(1)",
                "http://127.0.0.1:99999/", "http://127.0.0.1/" + "a" * 3000]:
        r = subscribe(url)
        assert codes(r.text) == ["ErrorInvalidPushSubscriptionUrl"], url
    for freq in ["0", "1441", "x"]:
        r = subscribe("http://127.0.0.1:1/", freq)
        assert r.status_code == 500 and "ErrorSchemaValidation" in r.text, freq
    # The Unsubscribe operation ends one too (the receiver then hears nothing more).
    r = subscribe("http://127.0.0.1:1/")
    assert codes(r.text) == ["NoError"]
    sub_id = next(ET.fromstring(r.text).iter(f"{{{M}}}SubscriptionId")).text
    r = soap(deployment, f"<m:Unsubscribe><m:SubscriptionId>{sub_id}</m:SubscriptionId></m:Unsubscribe>")
    assert codes(r.text) == ["NoError"]
    assert get_events_code(deployment, sub_id) == "ErrorSubscriptionNotFound"
