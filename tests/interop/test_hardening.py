"""Issue 9's attacks against a running `tandem up`, each of which once harmed the server: a
CreateItem property holding 10,000 nested elements (a stack overflow that aborted the process)
and an element with 1,000,000 attributes (about 40 minutes of CPU on an async worker). Both must
get a SOAP fault, and the server must keep answering ordinary EWS requests in milliseconds, also
while the attacks are in flight.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_hardening.py -q
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import stat
import time

import pytest
import requests

from conftest import DEMO_PASSWORD, DOMAIN, Tandem

M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
S = "http://schemas.xmlsoap.org/soap/envelope/"
ALICE = f"alice@{DOMAIN}"
INBOX = ('<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>'
         '<m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>')


@pytest.fixture(scope="module")
def deployment(tandem_bin, tmp_path_factory):
    t = Tandem(tandem_bin, tmp_path_factory.mktemp("hardening"))
    t.start()
    st = t.status()
    yield {"t": t, "ews": st["mailbox"]["ews_url"], "ca": st["ca_certificate"]}
    t.kill_all()


def envelope(body: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}" xmlns:m="{M}" xmlns:t="{T}">'
            '<s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header>'
            f"<s:Body>{body}</s:Body></s:Envelope>").encode()


def nested() -> bytes:
    depth = 10_000
    return envelope('<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message><t:Subject>'
                    + "<t:a>" * depth + "x" + "</t:a>" * depth
                    + "</t:Subject></t:Message></m:Items></m:CreateItem>")


def wide() -> bytes:
    attrs = "".join(f' a{i}=""' for i in range(1_000_000))
    return envelope(f'<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message{attrs}>'
                    "<t:Subject>x</t:Subject></t:Message></m:Items></m:CreateItem>")


def post(d, data: bytes, timeout=60):
    return requests.post(d["ews"], data=data, headers={"Content-Type": "text/xml; charset=utf-8"},
                         auth=(ALICE, DEMO_PASSWORD), verify=d["ca"], timeout=timeout)


def ordinary_request_seconds(d) -> float:
    started = time.monotonic()
    r = post(d, envelope(INBOX), timeout=10)
    elapsed = time.monotonic() - started
    assert r.status_code == 200 and "NoError" in r.text, r.text
    return elapsed


@pytest.mark.timeout(120)
def test_nested_and_wide_xml_get_faults_and_the_server_keeps_answering(deployment):
    ordinary_request_seconds(deployment)  # warm the sign-in cache and the connection
    baseline = min(ordinary_request_seconds(deployment) for _ in range(3))
    payloads = {"nested": (nested(), "nested more than 128 deep"), "wide": (wide(), "more than 64 attributes")}
    assert len(payloads["nested"][0]) > 110_000 and len(payloads["wide"][0]) > 10_000_000
    for name, (data, reason) in payloads.items():
        r = post(deployment, data)
        assert r.status_code == 500, f"{name}: {r.status_code} {r.text[:500]}"
        assert "ErrorSchemaValidation" in r.text and reason in r.text, f"{name}: {r.text[:500]}"
        assert deployment["t"].proc.alive(), deployment["t"].logs()
        after = min(ordinary_request_seconds(deployment) for _ in range(3))
        assert after < max(0.25, 10 * baseline), f"{name}: {after:.3f} s after, {baseline:.3f} s before"

    # Four attacks in flight at once: ordinary requests are still answered promptly.
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        attacks = [pool.submit(post, deployment, payloads[k][0]) for k in ("wide", "nested", "wide", "nested")]
        during = max(ordinary_request_seconds(deployment) for _ in range(5))
        for a in attacks:
            assert a.result().status_code == 500
    assert during < 1.0, f"{during:.3f} s while attacked"
    assert deployment["t"].proc.alive(), deployment["t"].logs()


@pytest.mark.timeout(120)
def test_parallel_wrong_passwords_lock_the_account_with_one_answer(deployment):
    ordinary_request_seconds(deployment)  # alice signs in first: her cached sign-in keeps working
    bob = f"bob@{DOMAIN}"

    def attempt(user, password):
        return requests.post(deployment["ews"], data=envelope(INBOX), auth=(user, password),
                             headers={"Content-Type": "text/xml; charset=utf-8"}, verify=deployment["ca"], timeout=60)

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda n: attempt(bob, f"wrong password {n}").status_code, range(30)))
    assert statuses == [401] * 30
    # Locked: the right password is refused with the very answer an unknown user gets.
    locked = attempt(bob, DEMO_PASSWORD)
    unknown = attempt(f"nobody@{DOMAIN}", "wrong password")
    assert locked.status_code == unknown.status_code == 401
    assert locked.headers["WWW-Authenticate"] == unknown.headers["WWW-Authenticate"]
    assert locked.content == unknown.content
    # Others are unaffected, and the lockout is visible.
    assert ordinary_request_seconds(deployment) < 1.0
    metrics = requests.get(deployment["ews"].replace("/EWS/Exchange.asmx", "/metrics"), verify=deployment["ca"],
                           timeout=10).text
    assert 'tandem_auth_lockouts_total{key="account"} 1' in metrics, metrics
    deadline = time.monotonic() + 5
    while "account locked out" not in deployment["t"].logs() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "account locked out" in deployment["t"].logs()
    # The admin sees the lockout and lifts it (Unlock-ADAccount) from another process; the
    # running Mailbox lets bob in again at once.
    t = deployment["t"]
    shown = json.loads(t.run("user", "show", "bob", "--json", *t.location).stdout)
    assert shown["locked_out"] is True and shown["lockout_ends_at"] > time.time(), shown
    listed = {u["name"]: u for u in json.loads(t.run("user", "list", "--json", *t.location).stdout)}
    assert listed["bob"]["locked_out"] is True and listed["alice"]["locked_out"] is False, listed
    r = t.run("user", "unlock", "sip:bob@" + DOMAIN, *t.location)
    assert r.returncode == 0 and "bob unlocked" in r.stdout, (r.stdout, r.stderr)
    assert json.loads(t.run("user", "show", "bob", "--json", *t.location).stdout)["locked_out"] is False
    assert attempt(bob, DEMO_PASSWORD).status_code == 200
    r = t.run("user", "unlock", "nobody", *t.location)
    assert r.returncode != 0


def test_databases_and_data_directory_are_owner_only(deployment):
    data = deployment["t"].data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700, oct(data.stat().st_mode)
    databases = sorted(data.glob("*.db*"))
    assert {p.name for p in databases} >= {"directory.db", "mailbox.db", "frontend.db"}, databases
    for p in databases:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, f"{p.name}: {oct(p.stat().st_mode)}"
    # Private keys (TLS and the local CA) are owner-only in an owner-only folder.
    pki = deployment["t"].pki_dir
    assert stat.S_IMODE(pki.stat().st_mode) == 0o700, oct(pki.stat().st_mode)
    keys = [p for p in pki.rglob("*") if p.is_file() and "key" in p.name]
    assert keys, sorted(pki.rglob("*"))
    for p in keys:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, f"{p.name}: {oct(p.stat().st_mode)}"


@pytest.mark.timeout(120)
def test_one_user_at_her_subscription_cap_leaves_room_for_others(make_tandem):
    """Issue 9: one user filling a single server-wide table gave everybody `ErrorServerBusy`.
    With `[mailbox] ews_max_subscriptions_per_account` lowered to 5, alice's sixth pull
    subscription through exchangelib gets `ErrorExceededSubscriptionCount`, bob still
    subscribes, and alice subscribes again once she has given one back."""
    from exchangelib import BASIC, DELEGATE, Account, Configuration, Credentials, EWSTimeZone
    from exchangelib.errors import ErrorExceededSubscriptionCount
    from exchangelib.protocol import close_connections

    t = make_tandem(mailbox_extra="ews_max_subscriptions_per_account = 5")
    t.start()
    st = t.status()

    def account(address):
        creds = Credentials(address, DEMO_PASSWORD)
        config = Configuration(service_endpoint=st["mailbox"]["ews_url"], credentials=creds, auth_type=BASIC)
        return Account(address, credentials=creds, config=config, autodiscover=False, access_type=DELEGATE,
                       default_timezone=EWSTimeZone("UTC"))

    previous_bundle = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
    try:
        alice, bob = account(ALICE), account(f"bob@{DOMAIN}")
        held = [alice.inbox.subscribe_to_pull(event_types=("NewMailEvent",))[0] for _ in range(5)]
        assert len(set(held)) == 5
        with pytest.raises(ErrorExceededSubscriptionCount) as refused:
            alice.inbox.subscribe_to_pull(event_types=("NewMailEvent",))
        assert "maximum of 5 subscriptions" in str(refused.value), refused.value
        # Another user is not affected by alice's share being full.
        bob_sub, _ = bob.inbox.subscribe_to_pull(event_types=("NewMailEvent",))
        assert bob_sub not in held
        # A place given back is a place again.
        alice.inbox.unsubscribe(held.pop())
        held.append(alice.inbox.subscribe_to_pull(event_types=("NewMailEvent",))[0])
        metrics = requests.get(st["mailbox"]["ews_url"].replace("/EWS/Exchange.asmx", "/metrics"),
                               verify=st["ca_certificate"], timeout=10).text
        assert 'tandem_ews_subscriptions_refused_total{cap="account"} 1' in metrics, metrics
        assert "subscription refused: the account holds its maximum" in t.logs()
    finally:
        close_connections()
        if previous_bundle is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = previous_bundle
