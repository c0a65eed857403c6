"""The UC web API on the Front End (/ucwa/v1, issue 16 item 1) and the admin dashboard (/admin/,
item 3), against a running tandem. Tokens are minted as the Mailbox mints them for its signed-in
user (`tandem test uc-web-api --show-token`: the reverse trust's TokenIssuer); the SIP side is a
small SIP user agent (tests/interop/test_calendar_presence.py's Agent).

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_ucwa.py -q
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from conftest import DEMO_PASSWORD, DOMAIN, Tandem
from test_calendar_presence import Agent
from test_oauth import wait_trust

ALICE_SIP = f"sip:alice@{DOMAIN}"
BOB_SIP = f"sip:bob@{DOMAIN}"


@pytest.fixture(scope="module")
def deployment(tandem_bin, tmp_path_factory):
    t = Tandem(tandem_bin, tmp_path_factory.mktemp("ucwa"))
    t.start()
    wait_trust(t)
    yield t
    t.kill_all()


def base(t: Tandem) -> str:
    return f"https://127.0.0.1:{t.frontend_https_port}/ucwa/v1"


def ca(t: Tandem) -> str:
    return str(t.pki_dir / "ca.pem")


def token_for(t: Tandem, user: str) -> str:
    r = t.run("test", "uc-web-api", "--user", user, "--show-token", "--json", *t.location)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["ok"], f"{r.stdout}\n{r.stderr}"
    return out["token"]


def api(t: Tandem, method: str, path: str, token: str | None, **kw) -> requests.Response:
    headers = kw.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, base(t) + path, headers=headers, verify=ca(t), timeout=10, **kw)


class Events:
    """Reads /events in a thread, keeping (event, data, arrival time)."""

    def __init__(self, t: Tandem, token: str):
        self.items: list[tuple[str, dict, float]] = []
        self.cv = threading.Condition()
        self.resp = api(t, "GET", "/events", token, stream=True)
        assert self.resp.status_code == 200, self.resp.text
        assert self.resp.headers["content-type"].startswith("text/event-stream")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        event = None
        try:
            for line in self.resp.iter_lines(decode_unicode=True):
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event:
                    with self.cv:
                        self.items.append((event, json.loads(line[5:]), time.monotonic()))
                        self.cv.notify_all()
        except Exception:
            pass

    def wait(self, want, budget: float = 5.0):
        deadline = time.monotonic() + budget
        with self.cv:
            while True:
                for e, d, at in self.items:
                    if want(e, d):
                        return d, at
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no matching event within {budget} s; got {self.items}", pytrace=False)
                self.cv.wait(left)

    def close(self):
        self.resp.close()


def test_me_and_the_openapi_document(deployment):
    t = deployment
    tok = token_for(t, "alice")
    r = api(t, "GET", "/me", tok)
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["uri"] == ALICE_SIP and set(me) == {"uri", "display_name", "availability", "activity", "note"}
    doc = requests.get(base(t) + "/openapi.json", verify=ca(t), timeout=10).json()
    assert doc["openapi"].startswith("3.") and "/events" in doc["paths"]


def test_refused_tokens_and_bad_bodies(deployment):
    t = deployment
    assert api(t, "GET", "/me", None).status_code == 401
    r = api(t, "GET", "/me", "not-a-token")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].lower().startswith("bearer")
    tok = token_for(t, "alice")
    # A forged token: the actor's signature no longer matches once a claim is changed.
    head, body, sig = tok.split(".")[:3] if tok.count(".") >= 2 else (tok, "", "")
    forged = tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB")
    assert api(t, "GET", "/me", forged).status_code == 401
    r = api(t, "PUT", "/me/presence", tok, json={"availability": "Sleeping"})
    assert r.status_code == 400 and r.json()["code"] == "BadRequest"
    r = api(t, "PUT", "/me/presence", tok, data="x" * 20000, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    r = api(t, "POST", "/subscriptions", tok, data="{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


def test_presence_set_here_reaches_a_sip_watcher_and_sip_publish_reaches_the_stream(deployment):
    t = deployment
    alice, bob = token_for(t, "alice"), token_for(t, "bob")
    watcher = Agent(t, "carol")
    try:
        watcher.subscribe(ALICE_SIP)
        r = api(t, "PUT", "/me/presence", alice, json={"availability": "DoNotDisturb", "note": "Writing"})
        assert r.status_code == 204, r.text
        body, _ = watcher.wait_notify(lambda b: "Writing" in b and "busy" in b.lower(), 5, "alice's busy note")
        r = api(t, "GET", "/presence", bob, params=[("uri", ALICE_SIP), ("uri", f"alice@{DOMAIN}")])
        assert r.status_code == 200
        assert [p["availability"] for p in r.json()] == ["DoNotDisturb", "DoNotDisturb"], r.json()
        assert r.json()[0]["note"] == "Writing"

        # Bob's browser watches carol; carol's SIP client publishes; the event arrives.
        events = Events(t, bob)
        try:
            assert api(t, "POST", "/subscriptions", bob, json={"uris": [f"sip:carol@{DOMAIN}"]}).status_code == 204
            events.wait(lambda e, d: e == "presence" and d["uri"] == f"sip:carol@{DOMAIN}")
            pidf = (f'<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:carol@{DOMAIN}">'
                    '<tuple id="t"><status><basic>open</basic></status><note>Away for lunch</note></tuple></presence>')
            pidf = pidf.replace("<note>", '<note>').replace("</tuple>", "</tuple>")
            sent = time.monotonic()
            watcher.publish(pidf)
            d, at = events.wait(lambda e, d: e == "presence" and d.get("note") == "Away for lunch")
            took = at - sent
            print(f"\nBENCH presence change (SIP PUBLISH -> event stream): {took * 1000:.1f} ms")
            assert took < 1.0, took
        finally:
            events.close()
    finally:
        watcher.close()


def test_im_to_the_user_reaches_the_stream_and_from_the_api_reaches_sip(deployment):
    t = deployment
    alice = token_for(t, "alice")
    bob_agent = Agent(t, "bob")
    events = Events(t, alice)
    try:
        # An IM from a SIP client to alice, whose only endpoint is the web session.
        r, _ = bob_agent.request("MESSAGE", ALICE_SIP, ALICE_SIP, ["Content-Type: text/plain"], "Hi alice, from SIP")
        assert r.startswith("SIP/2.0 200"), r
        d, _ = events.wait(lambda e, d: e == "message" and d["text"] == "Hi alice, from SIP")
        assert d["from"] == BOB_SIP and d["to"] == ALICE_SIP
        # From the API to bob (offline on SIP: kept, 202 all the same).
        r = api(t, "POST", "/messages", alice, json={"to": BOB_SIP, "text": "Hello bob"})
        assert r.status_code == 202 and r.json()["conversation"], r.text
        r = api(t, "POST", "/messages", alice, json={"to": f"sip:nobody@{DOMAIN}", "text": "x"})
        assert r.status_code == 404
    finally:
        events.close()
        bob_agent.close()


def test_click_to_call_needs_a_registered_phone(deployment):
    t = deployment
    alice = token_for(t, "alice")
    r = api(t, "POST", "/calls", alice, json={"to": BOB_SIP})
    assert r.status_code == 409 and r.json()["code"] == "NoPhone", r.text


def test_cors_preflight_for_allowed_and_refused_origins(deployment):
    t = deployment
    r = t.run("cs", "get-web-service-configuration", "--json", *t.location)
    conf = json.loads(r.stdout)
    # The default: the Mailbox's HTTPS origin (that of ExchangeAutodiscoverUrl).
    assert conf["Source"].startswith("default") and len(conf["CrossDomainAuthorizationList"]) == 1, conf
    allowed = conf["CrossDomainAuthorizationList"][0]
    assert str(t.mailbox_https_port) in allowed, allowed
    pre = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    r = api(t, "OPTIONS", "/me", None, headers={"Origin": allowed, **pre})
    assert r.status_code == 204, (r.status_code, r.text)
    assert r.headers["Access-Control-Allow-Origin"] == allowed
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    r = api(t, "OPTIONS", "/me", None, headers={"Origin": "https://evil.example", **pre})
    assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r.headers
    # A new list applies without restart.
    r = t.run("cs", "set-web-service-configuration", "--cross-domain-authorization-list",
              "https://evil.example", *t.location)
    assert r.returncode == 0, r.stderr
    time.sleep(2.5)
    r = api(t, "OPTIONS", "/me", None, headers={"Origin": "https://evil.example", **pre})
    assert r.status_code == 204
    r = api(t, "OPTIONS", "/me", None, headers={"Origin": allowed, **pre})
    assert r.status_code == 403
    t.run("cs", "set-web-service-configuration", "--cross-domain-authorization-list", allowed, *t.location)


def dash(t: Tandem) -> str:
    return f"https://127.0.0.1:{t.frontend_https_port}/admin"


def test_dashboard_admins_only_cookie_flags_and_csp(deployment):
    t = deployment
    s = requests.Session()
    s.verify = ca(t)
    s.trust_env = False  # REQUESTS_CA_BUNDLE (another module's) would override verify
    r = s.get(dash(t) + "/", allow_redirects=False, timeout=10)
    assert r.status_code in (302, 303, 307) and r.headers["location"].endswith("/admin/sign-in")
    assert s.get(dash(t) + "/api/overview", timeout=10).status_code == 401
    # A directory user who is not an administrator is refused like a wrong password.
    r = s.post(dash(t) + "/sign-in", data={"login": "bob", "password": DEMO_PASSWORD}, allow_redirects=False, timeout=20)
    wrong = s.post(dash(t) + "/sign-in", data={"login": "bob", "password": "nope"}, allow_redirects=False, timeout=20)
    assert r.status_code == wrong.status_code == 401 and r.text == wrong.text
    assert "set-cookie" not in r.headers
    r = t.run("cs", "add-admin-role-member", "--members", "alice", *t.location)
    assert r.returncode == 0, r.stderr
    time.sleep(2.5)
    r = s.post(dash(t) + "/sign-in", data={"login": "alice", "password": DEMO_PASSWORD}, allow_redirects=False,
               timeout=20)
    assert r.status_code in (302, 303), r.text
    cookie = r.headers["set-cookie"]
    for flag in ("__Host-tandem_admin=", "Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert flag in cookie, cookie
    page = s.get(dash(t) + "/", timeout=10)
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert "<script>" not in page.text and 'src="/admin/assets/dashboard.js"' in page.text
    o = s.get(dash(t) + "/api/overview", timeout=120).json()
    assert o["user"] == ALICE_SIP
    assert o["steps"] and all(st["status"] != "fail" for st in o["steps"]), o["steps"]
    assert any(c["slot"] == "current" for c in o["certificates"])
    assert any(p["name"] == "microsoft.exchange" for p in o["partners"])
    # Sign-out needs the CSRF token; without it the session stays.
    assert s.post(dash(t) + "/sign-out", timeout=10).status_code == 403
    assert s.post(dash(t) + "/sign-out", headers={"X-CSRF-Token": o["csrf"]}, timeout=10).status_code == 204
    assert s.get(dash(t) + "/api/overview", timeout=10).status_code == 401
