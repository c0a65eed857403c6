"""S2S tokens on the mailbox's own endpoints: EWS and SOAP Autodiscover accept the Front End's
tokens (Test-OAuthConnectivity), refuse forged ones with the Bearer challenge and x-ms-diagnostics,
and offer Basic and Bearer challenges to a request without credentials.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_oauth_ews.py -q
"""

from __future__ import annotations

import json

import requests

from conftest import DOMAIN
from test_oauth import EXCHANGE, LYNC, our_token, wait_trust


def connectivity(t, service: str, url: str, mailbox: str = f"alice@{DOMAIN}"):
    r = t.run("test", "oauth-connectivity", "--service", service, "--target-uri", url, "--mailbox", mailbox,
              "--json", *t.location)
    return r.returncode, json.loads(r.stdout)


def test_ews_and_autodiscover_accept_s2s_tokens(tandem):
    wait_trust(tandem)
    port = tandem.mailbox_https_port
    rc, out = connectivity(tandem, "EWS", f"https://mail.{DOMAIN}:{port}/EWS/Exchange.asmx")
    assert rc == 0 and out["status"] == 200, out
    rc, out = connectivity(tandem, "AutoD", f"https://autodiscover.{DOMAIN}:{port}/autodiscover/autodiscover.svc")
    assert rc == 0 and out["status"] == 200, out

    ca = str(tandem.pki_dir / "ca.pem")
    ews = f"https://127.0.0.1:{port}/EWS/Exchange.asmx"
    r = requests.post(ews, data="x", headers={"Authorization": "Bearer abc.def.ghi"}, verify=ca, timeout=10)
    assert r.status_code == 401
    assert r.headers["x-ms-diagnostics"].startswith("2000001;reason=")
    assert r.headers["www-authenticate"] == (
        f'Bearer client_id="{EXCHANGE}", trusted_issuers="{LYNC}@{DOMAIN}", '
        'token_types="app_asserted_user_v1 service_asserted_app_v1"'
    )
    r = requests.post(ews, data="x", verify=ca, timeout=10)
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Basic realm=") and f'Bearer client_id="{EXCHANGE}"' in challenge

    # A user without a mailbox cannot be acted as; a disabled partner is refused.
    assert tandem.run("user", "disable", "bob", "--mailbox", *tandem.location).returncode == 0
    token = our_token(tandem, f"bob@{DOMAIN}")
    r = requests.post(ews, data="x", headers={"Authorization": f"Bearer {token}"}, verify=ca, timeout=10)
    assert r.status_code == 403, r.text
    assert tandem.run("exchange", "set-partner-application", "--name", "Lync", "--enabled", "false",
                      *tandem.location).returncode == 0
    token = our_token(tandem)
    deadline_ok = False
    for _ in range(30):
        r = requests.post(ews, data="x", headers={"Authorization": f"Bearer {token}"}, verify=ca, timeout=10)
        if r.status_code == 401:
            deadline_ok = True
            break
        import time

        time.sleep(0.2)
    assert deadline_ok, "disabling the partner applies without a restart (within 2 s)"
    assert 'error_category="invalid_issuer"' in r.headers["x-ms-diagnostics"]
