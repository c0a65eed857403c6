"""Autodiscover redirects between two organisations: a mail user of the first (Enable-MailUser
-ExternalEmailAddress) whose mailbox is in the second. The first answers RedirectAddress (SOAP)
and redirectAddr (POX); ews-javascript-api, the EWS Managed API's port, follows it to the second
organisation's Autodiscover and binds the mailbox there; the first organisation's Front End
follows it only when ExchangeAutodiscoverAllowedDomains allows the second's host.

Both deployments run in one network namespace (see test_ews_js.py): litwareinc.com on
127.0.0.1:443 and fabrikam.com on 127.0.0.2:443, with a hosts file naming both.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_autodiscover_redirect.py -q
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import requests

from conftest import DEMO_PASSWORD, DOMAIN, Tandem
from test_ews_js import FLOW_BUDGET, NODE, PROJECT, HostsNetNs
from test_oauth import wait_trust

REMOTE = "fabrikam.com"
MAIL_USER = f"carol@{DOMAIN}"
ALIAS = f"alice.anderson@{DOMAIN}"

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed (scripts/test.sh needs Node and npm)"),
    pytest.mark.timeout(4 * FLOW_BUDGET),
]


@pytest.fixture(scope="module")
def orgs(tandem_bin, tmp_path_factory):
    if not (PROJECT / "node_modules" / "ews-javascript-api").is_dir():
        pytest.fail(f"{PROJECT}/node_modules is missing: run `npm ci` there (scripts/test.sh does)", pytrace=False)
    names = lambda d: [d, f"autodiscover.{d}", f"mail.{d}"]  # noqa: E731
    ns = HostsNetNs(names(DOMAIN))
    (ns.etc / "hosts").write_text(
        "127.0.0.1 localhost " + " ".join(names(DOMAIN)) + "\n127.0.0.2 " + " ".join(names(REMOTE)) + "\n"
    )
    here = Tandem(tandem_bin, tmp_path_factory.mktemp("org-litware"), prefix=ns.prefix)
    there = Tandem(tandem_bin, tmp_path_factory.mktemp("org-fabrikam"), domain=REMOTE, prefix=ns.prefix,
                   listen_host="127.0.0.2")
    try:
        for t in (here, there):
            t.mailbox_https_port = 443  # Its own namespace: 443 is free there, as on an Exchange server.
            t.write_config()
            t.start()
        wait_trust(here)
        # Carol's mailbox is in the other organisation; here she is a mail user.
        for args in (["user", "disable", "carol", "--mailbox"],
                     ["exchange", "enable-mail-user", "--identity", "carol",
                      "--external-email-address", f"SMTP:carol@{REMOTE}"]):
            r = here.run(*args, *here.location)
            assert r.returncode == 0, r.stdout + r.stderr
        # An alias of Alice's: a user with no mailbox, sent on to her address.
        r = here.run("user", "add", "alice.anderson", "--display-name", "Alice (old address)",
                     "--password-stdin", *here.location, input=DEMO_PASSWORD + "\n")
        assert r.returncode == 0, r.stdout + r.stderr
        for args in (["user", "disable", "alice.anderson", "--mailbox"],
                     ["exchange", "enable-mail-user", "--identity", "alice.anderson",
                      "--external-email-address", f"alice@{DOMAIN}"]):
            r = here.run(*args, *here.location)
            assert r.returncode == 0, r.stdout + r.stderr
        cas = here.root / "both-cas.pem"
        cas.write_text(
            open(here.status()["ca_certificate"]).read() + open(there.status()["ca_certificate"]).read()
        )
        yield {"here": here, "there": there, "ns": ns, "cas": str(cas)}
    finally:
        here.kill_all()
        there.kill_all()
        ns.delete()


def test_get_mail_user_shows_the_redirect(orgs):
    here = orgs["here"]
    r = here.run("exchange", "get-mail-user", "--json", *here.location)
    assert r.returncode == 0, r.stderr
    users = {u["Name"]: u for u in json.loads(r.stdout)}
    assert users["carol"]["ExternalEmailAddress"] == f"SMTP:carol@{REMOTE}"
    assert users["carol"]["RecipientTypeDetails"] == "MailUser"
    # Enable-MailUser needs a user without a mailbox, as Exchange's does; the error says what to do.
    r = here.run("exchange", "enable-mail-user", "--identity", "bob", "--external-email-address",
                 f"bob@{REMOTE}", *here.location)
    assert r.returncode != 0 and "tandem user disable bob --mailbox" in r.stderr, r.stdout + r.stderr
    r = here.run("exchange", "enable-mail-user", "--identity", "carol", "--external-email-address",
                 "not an address", *here.location)
    assert r.returncode != 0 and "--external-email-address" in r.stderr, r.stderr


def test_ews_javascript_api_follows_the_redirect_to_the_other_organisation(orgs):
    env = {k: v for k, v in os.environ.items() if not k.startswith("npm_")}
    env.update(
        TANDEM_EMAIL=f"alice@{DOMAIN}",
        TANDEM_PASSWORD=DEMO_PASSWORD,
        TANDEM_MAIL_USER=MAIL_USER,
        TANDEM_MAIL_USER_LOGIN="carol",
        TANDEM_ALIAS=ALIAS,
        TANDEM_REMOTE_EWS_URL=orgs["there"].status()["mailbox"]["ews_url"],
        NODE_EXTRA_CA_CERTS=orgs["cas"],
        NO_PROXY="*",
    )
    r = subprocess.run(
        [*orgs["ns"].prefix, NODE, "--test", "--test-reporter=tap", "flows/redirect.test.js"],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=2 * FLOW_BUDGET,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "# fail 0" in r.stdout and "# pass 2" in r.stdout, (
        f"{out}\n{orgs['here'].logs()[-3000:]}\n{orgs['there'].logs()[-3000:]}"
    )
    assert f"redirected {MAIL_USER}" in out, out


def test_pox_answers_redirect_addr(orgs):
    """POX Autodiscover (Outlook, DavMail): Action redirectAddr with the new address; the mail
    user may sign in for that answer only, not to EWS."""
    here = orgs["here"]
    st = here.status()
    # From outside the namespace: the Mailbox's listener on 443 is reachable only inside it.
    body = (
        '<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/'
        f'autodiscover/outlook/requestschema/2006"><Request><EMailAddress>{MAIL_USER}</EMailAddress>'
        "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
        "</AcceptableResponseSchema></Request></Autodiscover>"
    )
    script = (
        "import requests,sys;"
        "r=requests.post(sys.argv[1],data=sys.argv[2].encode(),auth=('carol',sys.argv[3]),verify=sys.argv[4],"
        "headers={'Content-Type':'text/xml'},timeout=10);print(r.status_code);print(r.text)"
    )
    import sys
    url = f"https://autodiscover.{DOMAIN}/autodiscover/autodiscover.xml"
    r = subprocess.run([*orgs["ns"].prefix, sys.executable, "-c", script, url, body, DEMO_PASSWORD,
                        st["ca_certificate"]], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    status, text = r.stdout.split("\n", 1)
    assert status == "200", r.stdout
    assert "<Action>redirectAddr</Action>" in text and f"<RedirectAddr>carol@{REMOTE}</RedirectAddr>" in text, text
    # EWS refuses the mail user: its mailbox is not here.
    ews_url = st["mailbox"]["ews_url"]
    r = subprocess.run([*orgs["ns"].prefix, sys.executable, "-c", script, ews_url, "<x/>", DEMO_PASSWORD,
                        st["ca_certificate"]], capture_output=True, text=True, timeout=30)
    assert r.stdout.split("\n", 1)[0] == "401", r.stdout + r.stderr


def test_the_front_end_follows_only_to_allowed_domains(orgs):
    """Test-CsExStorageConnectivity for carol: the redirect to fabrikam.com is refused while
    ExchangeAutodiscoverAllowedDomains names only the own domain (the default), and followed once
    it names fabrikam.com too — to the other organisation's Autodiscover, which does not trust
    this Front End's certificate or tokens, so the hop fails there."""
    here = orgs["here"]
    r = here.run("test", "ex-storage-connectivity", "--sip-uri", f"sip:{MAIL_USER}", "--json", *here.location)
    out = json.loads(r.stdout)
    assert r.returncode != 0 and not out["ok"], out
    text = json.dumps(out)
    assert f"carol@{REMOTE}" in text and "ExchangeAutodiscoverAllowedDomains" in text, out
    assert "--exchange-autodiscover-allowed-domains" in text, out

    r = here.run("cs", "set-oauth-configuration", "--exchange-autodiscover-allowed-domains",
                 f"*.{DOMAIN};*.{REMOTE}", *here.location)
    assert r.returncode == 0, r.stdout + r.stderr
    r = here.run("test", "ex-storage-connectivity", "--sip-uri", f"sip:{MAIL_USER}", "--json", *here.location)
    out = json.loads(r.stdout)
    text = json.dumps(out)
    assert not out["ok"], out
    assert f"autodiscover.{REMOTE}" in text and "ExchangeAutodiscoverAllowedDomains" not in text, out
