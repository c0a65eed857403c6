"""Server-to-server trust: metadata documents, S2S tokens checked by an independent JWT library
(PyJWT + cryptography), a third partner application minting tokens with PyJWT, certificate
rollover on both roles, the seed's setup steps, admin-command input rules, and DNS through a real
DNS server (dnsmasq).

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_oauth.py -q
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from conftest import DOMAIN, Tandem, free_ports

EXCHANGE = "00000002-0000-0ff1-ce00-000000000000"
LYNC = "00000004-0000-0ff1-ce00-000000000000"
THIRD = "11111111-2222-3333-4444-555555555555"


# ---------------------------------------------------------------- helpers


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def usage_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    assert r.returncode == 2, f"exit {r.returncode}, expected 2\nstdout: {r.stdout}\nstderr: {r.stderr}"
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def x5t(der: bytes) -> str:
    return b64url(hashlib.sha1(der).digest())


def wait_trust(t: Tandem, budget: float = 20.0) -> dict:
    """`tandem up` sets up the partner applications just after the listeners answer; wait for it."""
    deadline = time.monotonic() + budget
    while True:
        r = t.run("integration", "status", "--json", *t.location)
        out = json.loads(r.stdout) if r.stdout.strip() else {}
        if out.get("ok") and "Integration setup" in t.proc.stdout():
            return out
        if time.monotonic() > deadline:
            pytest.fail(f"the integration setup did not finish: {out}\n{t.logs()}")
        time.sleep(0.2)


def metadata(t: Tandem, role: str) -> dict:
    port = t.mailbox_https_port if role == "mailbox" else t.frontend_https_port
    path = "/autodiscover/metadata/json/1" if role == "mailbox" else "/metadata/json/1"
    r = requests.get(f"https://127.0.0.1:{port}{path}", verify=str(t.pki_dir / "ca.pem"), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def our_token(t: Tandem, mailbox: str = f"alice@{DOMAIN}") -> str:
    """A token as the Front End issues it for EWS calls (shown by `test oauth-connectivity --show-token`)."""
    r = t.run(
        "test", "oauth-connectivity", "--service", "EWS",
        "--target-uri", f"https://mail.{DOMAIN}:{t.mailbox_https_port}/EWS/Exchange.asmx",
        "--mailbox", mailbox, "--show-token", "--json", *t.location,
    )
    out = json.loads(r.stdout)
    return out["token"]


def check_token(t: Tandem, token: str) -> dict:
    r = t.run("test", "oauth-token", "--token", token, "--json", *t.location)
    out = json.loads(r.stdout)
    assert (r.returncode == 0) == out["accepted"], r.stderr
    return out


def new_key_and_cert(cn: str, org: str, issuer_key=None, issuer_name=None, san_ip: str | None = None):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
    )
    if san_ip:
        import ipaddress

        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(san_ip))]), critical=False)
    cert = b.sign(issuer_key or key, hashes.SHA256())
    return key, cert


def pem(key=None, cert=None) -> bytes:
    out = b""
    if cert is not None:
        out += cert.public_bytes(serialization.Encoding.PEM)
    if key is not None:
        out += key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    return out


def thumbprint(cert) -> str:
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()


class MetadataServer:
    """A third partner's metadata document over HTTPS, with a certificate from the deployment CA."""

    def __init__(self, t: Tandem, tmp: Path, document: dict):
        ca_cert = x509.load_pem_x509_certificate((t.pki_dir / "ca.pem").read_bytes())
        ca_key = serialization.load_pem_private_key((t.pki_dir / "ca.key").read_bytes(), None)
        key, cert = new_key_and_cert("127.0.0.1", "Fabrikam", ca_key, ca_cert.subject, san_ip="127.0.0.1")
        (tmp / "md.pem").write_bytes(pem(key, cert))
        self.document = document
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tmp / "md.pem"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/metadata/json/1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def third_partner_document(cert) -> dict:
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "id": "_fabrikam", "version": "1.0", "name": "Fabrikam", "realm": DOMAIN,
        "serviceName": THIRD, "issuer": f"{THIRD}@{DOMAIN}", "allowedAudiences": [f"{THIRD}@{DOMAIN}"],
        "keys": [{"usage": "signing", "keyinfo": {"x5t": x5t(der)},
                  "keyvalue": {"type": "x509Certificate", "value": base64.b64encode(der).decode()}}],
        "endpoints": [{"location": "x", "protocol": "OAuth2", "usage": "metadata"}],
    }


def pyjwt_user_token(key, cert, user: str = f"alice@{DOMAIN}", lifetime: int = 600, delta_now: int = 0) -> str:
    der = cert.public_bytes(serialization.Encoding.DER)
    now = int(time.time()) + delta_now
    aud = f"{EXCHANGE}/mail.{DOMAIN}@{DOMAIN}"
    actor = jwt.encode(
        {"aud": aud, "iss": f"{THIRD}@{DOMAIN}", "nameid": f"{THIRD}@{DOMAIN}", "nbf": str(now),
         "exp": str(now + lifetime), "trustedfordelegation": "true"},
        key, algorithm="RS256", headers={"x5t": x5t(der)},
    )
    return jwt.encode(
        {"aud": aud, "iss": f"{THIRD}@{DOMAIN}", "nameid": user, "smtp": user, "nbf": now,
         "exp": now + lifetime, "actortoken": actor},
        None, algorithm="none",
    )


# ---------------------------------------------------------------- tests


def test_metadata_documents_and_pyjwt_verifies_our_actor_token(tandem):
    wait_trust(tandem)
    fe = metadata(tandem, "frontend")
    assert fe["serviceName"] == LYNC and fe["issuer"] == f"{LYNC}@{DOMAIN}" and fe["realm"] == DOMAIN
    mbx = metadata(tandem, "mailbox")
    assert mbx["serviceName"] == EXCHANGE and mbx["issuer"].startswith(f"{EXCHANGE}@")
    for doc in (fe, mbx):
        for k in doc["keys"]:
            der = base64.b64decode(k["keyvalue"]["value"])
            assert k["keyinfo"]["x5t"] == x5t(der) and k["keyvalue"]["type"] == "x509Certificate"

    token = our_token(tandem)
    outer_header = jwt.get_unverified_header(token)
    assert outer_header["alg"] == "none"
    outer = jwt.decode(token, options={"verify_signature": False})
    actor = outer["actortoken"]
    header = jwt.get_unverified_header(actor)
    assert header["alg"] == "RS256"
    key = next(k for k in fe["keys"] if k["keyinfo"]["x5t"] == header["x5t"])
    cert = x509.load_der_x509_certificate(base64.b64decode(key["keyvalue"]["value"]))
    aud = f"{EXCHANGE}/mail.{DOMAIN}@{DOMAIN}"
    # MS-XOAUTH claims are strings, so PyJWT checks signature, audience and issuer; nbf/exp below.
    claims = jwt.decode(
        actor, cert.public_key(), algorithms=["RS256"], audience=aud, issuer=f"{LYNC}@{DOMAIN}",
        options={"verify_exp": False, "verify_nbf": False},
    )
    now = time.time()
    assert int(claims["nbf"]) <= now + 5 < int(claims["exp"])
    assert claims["nameid"] == outer["iss"] == f"{LYNC}@{DOMAIN}"
    assert claims["trustedfordelegation"] == "true"
    assert outer["smtp"] == f"alice@{DOMAIN}" and outer["aud"] == aud
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(actor[:-4] + ("AAAA" if not actor.endswith("AAAA") else "BBBB"), cert.public_key(),
                   algorithms=["RS256"], audience=aud, options={"verify_exp": False, "verify_nbf": False})
    # And the mailbox accepts it.
    out = check_token(tandem, token)
    assert out["accepted"] and out["result"]["user"] == f"alice@{DOMAIN}"
    assert out["result"]["rights"] == ["UserApplication", "ArchiveApplication"]


def test_third_partner_pyjwt_token_accepted(tandem, tmp_path):
    wait_trust(tandem)
    key, cert = new_key_and_cert("fabrikam app", "Fabrikam")
    server = MetadataServer(tandem, tmp_path, third_partner_document(cert))
    try:
        ok(tandem.run("exchange", "new-partner-application", "--name", "Fabrikam",
                      "--auth-metadata-url", server.url, *tandem.location))
        listed = json.loads(ok(tandem.run("exchange", "get-partner-application", "--name", "Fabrikam", "--json",
                                          *tandem.location)).stdout)
        assert listed[0]["ApplicationIdentifier"] == THIRD and listed[0]["Enabled"] is True

        out = check_token(tandem, pyjwt_user_token(key, cert))
        assert out["accepted"], out
        assert out["result"]["partner"] == "Fabrikam" and out["result"]["user"] == f"alice@{DOMAIN}"

        refused = check_token(tandem, pyjwt_user_token(key, cert, user="mallory@fabrikam.com"))
        assert not refused["accepted"] and 'error_category="invalid_tenant"' in refused["x-ms-diagnostics"]
        refused = check_token(tandem, pyjwt_user_token(key, cert, delta_now=-7200))
        assert 'error_category="invalid_lifetime"' in refused["x-ms-diagnostics"]
        other_key, _ = new_key_and_cert("forger", "Fabrikam")
        refused = check_token(tandem, pyjwt_user_token(other_key, cert))
        assert 'error_category="invalid_signature"' in refused["x-ms-diagnostics"]
        assert refused["www-authenticate"].startswith(f'Bearer client_id="{EXCHANGE}", trusted_issuers="')
        assert 'token_types="app_asserted_user_v1 service_asserted_app_v1"' in refused["www-authenticate"]

        ok(tandem.run("exchange", "set-partner-application", "--name", "Fabrikam", "--enabled", "false",
                      *tandem.location))
        refused = check_token(tandem, pyjwt_user_token(key, cert))
        assert 'error_category="invalid_issuer"' in refused["x-ms-diagnostics"]
        assert "disabled" in refused["x-ms-diagnostics"]
    finally:
        server.close()


def test_metadata_url_that_serves_garbage_is_refused(tandem, tmp_path):
    wait_trust(tandem)
    server = MetadataServer(tandem, tmp_path, {"hello": "world"})
    try:
        r = tandem.run("exchange", "new-partner-application", "--name", "Bad", "--auth-metadata-url", server.url,
                       *tandem.location)
        assert r.returncode == 1, r
        assert "The metadata document could not be downloaded from the URL" in r.stderr
        assert "not a valid metadata document" in r.stderr
    finally:
        server.close()


def test_mailbox_auth_certificate_rollover(tandem):
    wait_trust(tandem)
    before = json.loads(ok(tandem.run("exchange", "get-auth-config", "--json", *tandem.location)).stdout)
    old = before["CurrentCertificateThumbprint"]
    assert old and before["ServiceName"] == EXCHANGE
    key, cert = new_key_and_cert("Tandem Mailbox Server Auth Certificate 2", DOMAIN)
    (tandem.pki_dir / "auth-next.pem").write_bytes(pem(cert=cert))
    (tandem.pki_dir / "auth-next.key").write_bytes(pem(key=key))
    new = thumbprint(cert)
    ok(tandem.run("exchange", "set-auth-config", "--new-certificate-thumbprint", new,
                  "--new-certificate-effective-date", "2099-01-01", *tandem.location))
    assert len(metadata(tandem, "mailbox")["keys"]) == 2
    ok(tandem.run("exchange", "set-auth-config", "--publish-certificate", *tandem.location))
    cfg = json.loads(ok(tandem.run("exchange", "get-auth-config", "--json", *tandem.location)).stdout)
    assert cfg["CurrentCertificateThumbprint"] == new and cfg["PreviousCertificateThumbprint"] == old
    ok(tandem.run("exchange", "set-auth-config", "--clear-previous-certificate", *tandem.location))
    keys = metadata(tandem, "mailbox")["keys"]
    assert [k["keyinfo"]["x5t"] for k in keys] == [x5t(cert.public_bytes(serialization.Encoding.DER))]
    # The Front End's partner application picks the new key up (metadata refetch) and the
    # integration still passes.
    status = json.loads(tandem.run("integration", "status", "--json", *tandem.location).stdout)
    assert status["ok"], status


def test_frontend_certificate_rollover_keeps_tokens_valid(tandem, tmp_path):
    wait_trust(tandem)
    token_old = our_token(tandem)
    assert check_token(tandem, token_old)["accepted"]
    key, cert = new_key_and_cert(f"oauth.{DOMAIN}", DOMAIN)
    f = tmp_path / "oauth-new.pem"
    f.write_bytes(pem(key, cert))
    # Scheduled roll: published at once, signing continues with the current certificate.
    ok(tandem.run("cs", "set-certificate", "--type", "OAuthTokenIssuer", "--path", str(f), "--roll",
                  "--effective-date", str(int(time.time()) + 3), *tandem.location))
    assert len(metadata(tandem, "frontend")["keys"]) == 2
    failures = 0
    deadline = time.monotonic() + 8
    new_x5t = x5t(cert.public_bytes(serialization.Encoding.DER))
    rolled = False
    while time.monotonic() < deadline:
        tok = our_token(tandem)
        actor = jwt.decode(tok, options={"verify_signature": False})["actortoken"]
        rolled = rolled or jwt.get_unverified_header(actor)["x5t"] == new_x5t
        if not check_token(tandem, tok)["accepted"]:
            failures += 1
        if rolled:
            break
        time.sleep(0.5)
    assert rolled, "the scheduled certificate never took over"
    assert failures == 0
    assert check_token(tandem, token_old)["accepted"], "tokens signed by the previous certificate stay valid"
    rows = json.loads(ok(tandem.run("cs", "get-certificate", "--type", "OAuthTokenIssuer", "--json",
                                    *tandem.location)).stdout)
    assert {r["Slot"] for r in rows} == {"current", "previous"}


def test_integration_status_after_up(tandem):
    wait_trust(tandem)
    r = tandem.run("integration", "status", "--json", *tandem.location)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["ok"], out
    by = {s["step"]: s for s in out["steps"]}
    for step in ("1", "2a", "2b", "3", "4", "5", "6", "7"):
        assert by[step]["status"] == "pass", by[step]
    assert "answers (HTTP" in by["4"]["reason"], by["4"]
    assert "read back from the Conversation History folder" in by["7"]["reason"], by["7"]
    assert "Integration setup" in tandem.proc.stdout()
    # A disabled partner makes step 6 fail with the reason.
    ok(tandem.run("cs", "set-partner-application", "--identity", "microsoft.exchange", "--enabled", "false",
                  *tandem.location))
    r = tandem.run("integration", "status", "--json", *tandem.location)
    out = json.loads(r.stdout)
    assert r.returncode == 1
    step6 = next(s for s in out["steps"] if s["step"] == "6")
    assert step6["status"] == "fail" and "disabled" in step6["reason"]
    # Step 3 shows the URI clients get and fails, with the fix, when nothing answers there.
    assert f":{tandem.mailbox_https_port}/" in by["3"]["reason"], by["3"]
    ok(tandem.run("exchange", "set-client-access-server", "--autodiscover-service-internal-uri",
                  f"https://autodiscover.{DOMAIN}:1/autodiscover/autodiscover.xml", *tandem.location))
    out = json.loads(tandem.run("integration", "status", "--json", *tandem.location).stdout)
    step3 = next(s for s in out["steps"] if s["step"] == "3")
    assert step3["status"] == "fail" and "does not answer" in step3["reason"], step3
    assert "set-client-access-server --autodiscover-service-internal-uri" in step3["reason"], step3


def test_admin_input_rules_exit_2(tandem, tmp_path):
    wait_trust(tandem)
    L = tandem.location
    usage_error(tandem.run("cs", "set-oauth-configuration", "--exchange-autodiscover-url",
                           f"https://autodiscover.{DOMAIN}/autodiscover/autodiscover.xml", *L),
                "--exchange-autodiscover-url", "points at autodiscover.xml; use https://…/autodiscover/autodiscover.svc")
    usage_error(tandem.run("cs", "set-oauth-configuration", "--exchange-autodiscover-url",
                           f"http://autodiscover.{DOMAIN}/autodiscover/autodiscover.svc", *L), "plain http")
    usage_error(tandem.run("cs", "set-oauth-configuration", "--service-name", "not-a-guid", *L), "--service-name")
    usage_error(tandem.run("cs", "set-certificate", "--type", "OAuthTokenIssuer", "--thumbprint", "AB", "--roll", *L),
                "--roll requires --effective-date")
    key, cert = new_key_and_cert("pool.fabrikam.com", "Fabrikam")
    (tmp_path / "wrong.pem").write_bytes(pem(key, cert))
    usage_error(tandem.run("cs", "set-certificate", "--type", "OAuthTokenIssuer", "--path", str(tmp_path / "wrong.pem"), *L),
                "rule 1 (the SIP domain in the Subject)")
    key, cert = new_key_and_cert(f"pool.{DOMAIN}", DOMAIN)
    (tmp_path / "nokey.pem").write_bytes(pem(cert=cert))
    usage_error(tandem.run("cs", "set-certificate", "--type", "OAuthTokenIssuer", "--path", str(tmp_path / "nokey.pem"), *L),
                "rule 3 (the same certificate on every Front End)")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, DOMAIN)])
    now = datetime.datetime.now(datetime.timezone.utc)
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(small.public_key())
         .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
         .sign(small, hashes.SHA256()))
    (tmp_path / "small.pem").write_bytes(pem(small, c))
    usage_error(tandem.run("cs", "set-certificate", "--type", "OAuthTokenIssuer", "--path", str(tmp_path / "small.pem"), *L),
                "rule 2 (a key of at least 2048 bits)")
    ca = json.loads(ok(tandem.run("cert", "list", "--json", *L)).stdout)
    ca_thumb = next(x["thumbprint"] for x in ca if x["is_ca"])
    usage_error(tandem.run("cs", "set-certificate", "--type", "OAuthTokenIssuer", "--thumbprint", ca_thumb, *L),
                "certification authority")
    usage_error(tandem.run("exchange", "set-auth-config", "--publish-certificate", "--realm", DOMAIN, *L),
                "parameter sets")
    usage_error(tandem.run("exchange", "set-auth-config", "--publish-certificate", *L), "no next certificate")
    usage_error(tandem.run("cs", "new-partner-application", "--identity", "x", "--metadata-url",
                           "http://127.0.0.1/metadata/json/1", *L), "--metadata-url", "plain http")
    usage_error(tandem.run("exchange", "configure-enterprise-partner-application", "--auth-metadata-url",
                           f"https://127.0.0.1:{tandem.frontend_https_port}/metadata/json/1",
                           "--application-type", "Skype", *L), "--application-type")
    # Nothing changed: the integration still passes.
    assert json.loads(tandem.run("integration", "status", "--json", *L).stdout)["ok"]


DNSMASQ = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None)


@pytest.mark.skipif(DNSMASQ is None, reason="dnsmasq is not installed (scripts/test.sh installs dnsmasq-base)")
def test_dns_plan_checked_through_dnsmasq(make_tandem, tmp_path):
    t = make_tandem()
    t.start()
    plan = json.loads(ok(t.run("dns", "plan", "--json", *t.location)).stdout)
    names = {r["name"]: r for r in plan}
    assert names[f"autodiscover.{DOMAIN}."]["type"] == "CNAME"
    assert names[f"autodiscover.{DOMAIN}."]["value"] == f"mail.{DOMAIN}."

    def serve(records: list[dict], skip_autodiscover: bool) -> subprocess.Popen:
        (port,) = free_ports(1)
        args = [DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
                "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={port}", "--user=root",
                "--pid-file", "--log-facility=-"]
        for r in records:
            n = r["name"].rstrip(".")
            if r["type"] == "A":
                args.append(f"--host-record={n},{r['value']}")
            elif r["type"] == "CNAME" and not skip_autodiscover:
                args.append(f"--cname={n},{r['value'].rstrip('.')}")
            elif r["type"] == "SRV":
                prio, weight, p, target = r["value"].split()
                args.append(f"--srv-host={n},{target.rstrip('.')},{p},{prio},{weight}")
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=(tmp_path / f"dnsmasq-{port}.log").open("wb"))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind(("127.0.0.1", port))
                s.close()
                time.sleep(0.1)
            except OSError:
                s.close()
                break
        proc.port = port
        return proc

    good = serve(plan, skip_autodiscover=False)
    try:
        r = t.run("test", "dns", "--name-server", f"127.0.0.1:{good.port}", "--json", *t.location)
        out = json.loads(r.stdout)
        assert r.returncode == 0 and out["ok"], out
        ad = next(c for c in out["records"] if c["name"] == f"autodiscover.{DOMAIN}.")
        assert ad["found"] == [f"mail.{DOMAIN}."]
    finally:
        good.terminate()
        good.wait(5)
    bad = serve(plan, skip_autodiscover=True)
    try:
        r = t.run("test", "dns", "--name-server", f"127.0.0.1:{bad.port}", "--json", *t.location)
        out = json.loads(r.stdout)
        assert r.returncode == 1 and not out["ok"]
        failing = [c["name"] for c in out["records"] if not c["ok"]]
        assert failing == [f"autodiscover.{DOMAIN}."], out
    finally:
        bad.terminate()
        bad.wait(5)


def test_admin_round_trips(tandem):
    wait_trust(tandem)
    L = tandem.location
    cfg = json.loads(ok(tandem.run("cs", "get-oauth-configuration", "--json", *L)).stdout)
    assert cfg["Identity"] == "Global" and cfg["Realm"] == DOMAIN and cfg["ServiceName"] == LYNC
    assert cfg["ExchangeAutodiscoverUrl"].endswith("/autodiscover/autodiscover.svc")
    ok(tandem.run("cs", "set-oauth-configuration", "--identity", "global", "--exchange-autodiscover-allowed-domains",
                  f"*.{DOMAIN};*.fabrikam.com", *L))
    cfg = json.loads(ok(tandem.run("cs", "get-oauth-configuration", "--json", *L)).stdout)
    assert cfg["ExchangeAutodiscoverAllowedDomains"] == f"*.{DOMAIN};*.fabrikam.com"

    partners = json.loads(ok(tandem.run("cs", "get-partner-application", "--json", *L)).stdout)
    assert [(p["Identity"], p["ApplicationIdentifier"], p["ApplicationTrustLevel"]) for p in partners] == [
        ("microsoft.exchange", EXCHANGE, "Full")]
    mbx_url = f"https://127.0.0.1:{tandem.mailbox_https_port}/autodiscover/metadata/json/1"
    fe_url = f"https://127.0.0.1:{tandem.frontend_https_port}/metadata/json/1"
    ok(tandem.run("cs", "remove-partner-application", "--identity", "microsoft.exchange", *L))
    assert not json.loads(tandem.run("integration", "status", "--json", *L).stdout)["ok"]
    usage_error(tandem.run("cs", "new-partner-application", "--identity", "microsoft.exchange", "--metadata-url", fe_url, *L),
                "microsoft.exchange must be 00000002-0000-0ff1-ce00-000000000000")
    ok(tandem.run("cs", "new-partner-application", "--identity", "microsoft.exchange", "--metadata-url", mbx_url,
                  "--application-trust-level", "Full", *L))
    assert json.loads(tandem.run("integration", "status", "--json", *L).stdout)["ok"]

    before = json.loads(ok(tandem.run("exchange", "get-auth-config", "--json", *L)).stdout)
    key, cert = new_key_and_cert("Tandem Mailbox Server Auth Certificate 3", DOMAIN)
    (tandem.pki_dir / "auth-3.pem").write_bytes(pem(cert=cert))
    (tandem.pki_dir / "auth-3.key").write_bytes(pem(key=key))
    ok(tandem.run("exchange", "set-auth-config", "--certificate-thumbprint", thumbprint(cert).lower(), *L))
    after = json.loads(ok(tandem.run("exchange", "get-auth-config", "--json", *L)).stdout)
    assert after["CurrentCertificateThumbprint"] == thumbprint(cert)
    assert after["PreviousCertificateThumbprint"] == before["CurrentCertificateThumbprint"]
    ok(tandem.run("exchange", "set-auth-config", "--realm", DOMAIN, "--service-name", EXCHANGE, *L))
    assert metadata(tandem, "mailbox")["issuer"] == f"{EXCHANGE}@{DOMAIN}"
    assert json.loads(ok(tandem.run("exchange", "get-auth-config", "--json", *L)).stdout)["Realm"] == DOMAIN


def test_ex_storage_connectivity_writes_through_the_chain(tandem):
    """Test-CsExStorageConnectivity: DNS → SOAP Autodiscover → S2S token → EWS write and read.
    The item is then found by an independent client (requests, Basic auth) in Alice's
    Conversation History folder; with --delete-item it is gone again."""
    wait_trust(tandem)
    r = tandem.run("test", "ex-storage-connectivity", "--sip-uri", f"sip:alice@{DOMAIN}", "--json", *tandem.location)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["ok"], out
    assert [h["hop"] for h in out["hops"]] == ["DNS", "Autodiscover", "EWS write", "EWS read"], out
    subject = out["hops"][-1]["detail"].split("(")[-1].rstrip(")")
    status = tandem.status()

    def conversation_history_subjects() -> str:
        body = (
            '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" '
            'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Header>'
            '<t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body><m:FindItem Traversal="Shallow">'
            '<m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape><m:ParentFolderIds>'
            '<t:DistinguishedFolderId Id="conversationhistory"/></m:ParentFolderIds></m:FindItem></soap:Body></soap:Envelope>'
        )
        resp = requests.post(
            status["mailbox"]["ews_url"], data=body, auth=("alice", tandem.demo_password),
            headers={"Content-Type": "text/xml; charset=utf-8"}, verify=status["ca_certificate"], timeout=10,
        )
        assert resp.status_code == 200, resp.text
        return resp.text

    assert subject in conversation_history_subjects()
    # Bad input: an unknown user or folder is a usage error naming the problem.
    r = tandem.run("test", "ex-storage-connectivity", "--sip-uri", f"sip:nobody@{DOMAIN}", *tandem.location)
    assert r.returncode == 2 and "no such user" in r.stderr, r.stderr
    r = tandem.run("test", "ex-storage-connectivity", "--sip-uri", f"sip:alice@{DOMAIN}", "--folder", "Calendar",
                   *tandem.location)
    assert r.returncode == 2 and "--folder" in r.stderr, r.stderr
    # --delete-item leaves nothing behind.
    r = tandem.run("test", "ex-storage-connectivity", "--sip-uri", f"sip:alice@{DOMAIN}", "--delete-item", "--json",
                   *tandem.location)
    out = json.loads(r.stdout)
    assert [h["hop"] for h in out["hops"]][-3:] == ["EWS read", "EWS delete", "EWS removed"], out
    assert "ErrorItemNotFound" in out["hops"][-1]["detail"], out
    second = out["hops"][-3]["detail"].split("(")[-1].rstrip(")")
    assert second not in conversation_history_subjects()


def test_no_command_prints_a_signing_key(tandem):
    """The OAuth signing keys (and TLS keys) live in the stores and pki/; no read command shows them."""
    wait_trust(tandem)
    L = tandem.location
    reads = [
        ("cs", "get-certificate", "--type", "OAuthTokenIssuer"), ("cs", "get-oauth-configuration"), ("cs", "get-partner-application"),
        ("exchange", "get-auth-config"), ("exchange", "get-partner-application"),
        ("exchange", "get-client-access-server"), ("cert", "list"), ("integration", "status"), ("status",),
    ]
    for cmd in reads:
        for extra in ((), ("--json",)):
            r = tandem.run(*cmd, *extra, *L)
            out = r.stdout + r.stderr
            assert r.returncode in (0, 1), (cmd, extra, r.stderr)
            assert "PRIVATE KEY" not in out and "BEGIN RSA" not in out, (cmd, extra)
