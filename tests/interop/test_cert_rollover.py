"""Certificates that roll over by themselves: `tandem up` with the clock moved by configuration
(`[certificates] clock_offset_days`), so the Mailbox's Auth certificate and the Front End's
OAuthTokenIssuer certificate enter the 60-day renewal window. Each gets a successor published as
"next" in its metadata document, promoted on its effective date, the old one kept as "previous"
for the overlap and then dropped, while `tandem integration status` passes and
`tandem test ex-storage-connectivity` writes through the whole chain before and after. The
warnings show in `tandem cert list`, `/metrics` and the log.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_cert_rollover.py -q
"""

from __future__ import annotations

import datetime
import json
import re
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from conftest import DOMAIN, Tandem

OVERLAP = 10
# Published, promoted after OVERLAP, retired after another OVERLAP, checked every second.
ROLL_BUDGET = 4 * OVERLAP + 20


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def integration(t: Tandem) -> dict:
    r = t.run("integration", "status", "--json", *t.location)
    out = json.loads(r.stdout) if r.stdout.strip() else {}
    assert r.returncode == 0 and out.get("ok"), f"{out}\n{r.stderr}"
    return {s["step"]: s for s in out["steps"]}


def wait_integration(t: Tandem, budget: float = 20.0, first_start: bool = True) -> dict:
    """Waits for every step to pass (on first start: after `up` has set up the partners)."""
    deadline = time.monotonic() + budget
    while True:
        r = t.run("integration", "status", "--json", *t.location)
        out = json.loads(r.stdout) if r.stdout.strip() else {}
        if out.get("ok") and (not first_start or "Integration setup" in t.proc.stdout()):
            return {s["step"]: s for s in out["steps"]}
        if time.monotonic() > deadline:
            pytest.fail(f"the integration setup did not finish: {out}\n{t.logs()}")
        time.sleep(0.2)


def ex_storage(t: Tandem):
    r = t.run("test", "ex-storage-connectivity", "--sip-uri", f"sip:alice@{DOMAIN}", "--delete-item", "--json",
              *t.location)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["ok"], out


def slots(t: Tandem) -> dict:
    auth = json.loads(ok(t.run("exchange", "get-auth-config", "--json", *t.location)).stdout)
    rows = json.loads(ok(t.run("cs", "get-certificate", "--type", "OAuthTokenIssuer", "--json",
                               *t.location)).stdout)
    fe = {r["Slot"]: r["Thumbprint"] for r in rows}
    return {
        "auth": (auth["CurrentCertificateThumbprint"], auth["NextCertificateThumbprint"],
                 auth["PreviousCertificateThumbprint"]),
        "fe": (fe.get("current"), fe.get("next"), fe.get("previous")),
    }


def metadata_x5ts(t: Tandem, role: str) -> list[str]:
    port = t.mailbox_https_port if role == "mailbox" else t.frontend_https_port
    path = "/autodiscover/metadata/json/1" if role == "mailbox" else "/metadata/json/1"
    r = requests.get(f"https://127.0.0.1:{port}{path}", verify=str(t.pki_dir / "ca.pem"), timeout=10)
    assert r.status_code == 200, r.text
    return [k["keyinfo"]["x5t"] for k in r.json()["keys"]]


def metric(t: Tandem, name: str, certificate: str) -> float:
    r = requests.get(f"https://127.0.0.1:{t.mailbox_https_port}/metrics", verify=str(t.pki_dir / "ca.pem"), timeout=10)
    assert r.status_code == 200
    m = re.search(rf'^{name}{{certificate="{certificate}"}} (\S+)$', r.text, re.M)
    assert m, f"{name}{{certificate={certificate}}} not in /metrics:\n{r.text}"
    return float(m.group(1))


def five_year_token_issuer(path):
    """A 5-year OAuthTokenIssuer certificate with its key (the SIP domain in the Subject), as an
    administrator imports one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"oauth.{DOMAIN}"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, DOMAIN)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1825)).sign(key, hashes.SHA256()))
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM))


def set_certificates(t: Tandem, **values):
    """Edits the `[certificates]` table of the deployment's own tandem.toml (written by `up`)."""
    path = t.data_dir / "tandem.toml"
    text = path.read_text()
    head, sep, rest = text.partition("[certificates]\n")
    assert sep, text
    body, nxt, tail = rest.partition("\n[")
    lines = [l for l in body.splitlines() if l.split("=")[0].strip() not in values]
    lines += [f"{k} = {v}" for k, v in values.items()]
    path.write_text(head + sep + "\n".join(lines) + "\n" + (nxt + tail if nxt else ""))


@pytest.mark.timeout(240)
def test_both_signing_certificates_roll_over_by_themselves(make_tandem, tmp_path):
    t = make_tandem()
    t.config_file.write_text(
        t.config_text() + f"\n[certificates]\noverlap_seconds = {OVERLAP}\ncheck_interval_seconds = 1\n"
    )
    t.start()
    wait_integration(t)
    # The Front End signs with its TLS certificate (397 days) after first start; give it a 5-year
    # one, as the Mailbox's Auth certificate is, so one clock offset puts both inside the window.
    five_year_token_issuer(tmp_path / "oauth.pem")
    ok(t.run("cs", "set-certificate", "--type", "OAuthTokenIssuer", "--path", str(tmp_path / "oauth.pem"),
             *t.location))
    # Before: every step passes, the chain writes, and nothing warns.
    steps = integration(t)
    assert "expires in 18" in steps["2a"]["reason"] and "expires in 18" in steps["2b"]["reason"], steps
    ex_storage(t)
    before = slots(t)
    assert before["auth"][1:] == (None, None) and before["fe"][1] is None, before
    certs = json.loads(ok(t.run("cert", "list", "--json", "--signing", *t.location)).stdout)
    signing = [c for c in certs if c["use"] in ("Auth", "OAuthTokenIssuer") and c["slot"] == "current"]
    assert {c["use"] for c in signing} == {"Auth", "OAuthTokenIssuer"}, certs
    assert all(c["warning_threshold_days"] is None and c["days_left"] > 1800 for c in signing), signing
    # The replaced one (the TLS certificate) stays published as previous for the overlap.
    assert any(c["use"] == "OAuthTokenIssuer" and c["slot"] == "previous" for c in certs), certs
    assert metric(t, "tandem_certificate_warning_threshold_days", "auth") == 0

    # 1,770 days on: 55 days left, inside the 60-day window. Successors are made valid for 10
    # years (a 5-year one would be inside the window at once under this offset).
    t.stop()
    set_certificates(t, clock_offset_days=1770, signing_validity_days=3650)
    ok(t.run("config", "check", str(t.data_dir / "tandem.toml")))
    t.restart()
    wait_integration(t, first_start=False)

    saw = {"next": set(), "previous": set()}
    warned = False
    deadline = time.monotonic() + ROLL_BUDGET
    while True:
        s = slots(t)
        for role in ("auth", "fe"):
            cur, nxt, prev = s[role]
            if nxt:
                saw["next"].add(role)
                # While the successor waits, the old certificate warns (60 days) and both keys
                # are in the metadata document.
                if not warned and role == "auth":
                    certs = json.loads(ok(t.run("cert", "list", "--json", "--signing", *t.location)).stdout)
                    old = next(c for c in certs if c["use"] == "Auth" and c["slot"] == "current")
                    assert old["warning_threshold_days"] == 60 and old["days_left"] in (54, 55), old
                    assert any(c["use"] == "Auth" and c["slot"] == "next" for c in certs), certs
                    assert metric(t, "tandem_certificate_warning_threshold_days", "auth") == 60
                    assert 54 <= metric(t, "tandem_certificate_expiry_days", "auth") <= 55
                    warned = True
            if cur != before[role][0] and prev == before[role][0]:
                saw["previous"].add(role)
        # Whatever the phase, the integration passes and the chain writes.
        integration(t)
        ex_storage(t)
        done = all(s[r][0] != before[r][0] and s[r][1] is None and s[r][2] is None for r in ("auth", "fe"))
        if done:
            break
        assert time.monotonic() < deadline, f"the rollover did not complete: {s}\n{t.proc.stderr()}"
        time.sleep(0.5)
    assert saw == {"next": {"auth", "fe"}, "previous": {"auth", "fe"}}, saw
    assert warned

    # After: one key each, the new one; every step passes again without a warning.
    after = slots(t)
    assert len(metadata_x5ts(t, "mailbox")) == 1 and len(metadata_x5ts(t, "frontend")) == 1
    steps = integration(t)
    for step in ("2a", "2b", "6", "7"):
        assert steps[step]["status"] == "pass", steps[step]
    assert after["auth"][0] in steps["2a"]["reason"] and after["fe"][0] in steps["2b"]["reason"], steps
    ex_storage(t)
    assert metric(t, "tandem_certificate_warning_threshold_days", "oauth_token_issuer") == 0
    log = t.proc.stderr()
    assert "successor published as next" in log and "no longer published" in log, log
    assert "within a warning threshold" in log or "is published as next" in log, log
