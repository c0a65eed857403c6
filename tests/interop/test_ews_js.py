"""ews-javascript-api, the JavaScript port of Microsoft's EWS Managed API, against the real
binary: Autodiscover by e-mail address, appointments read back with Start/End intact, the
default properties Exchange always returns, and a streaming subscription that delivers events.

The flows are a small Node project (tests/interop/ews-js, run with node's own test runner); this
module starts a deployment and runs each flow file as a subprocess. The Managed API's
AutodiscoverUrl goes to https://autodiscover.<domain>/ and https://<domain>/ on port 443, as it
would against Exchange, so the deployment and Node share a network namespace in which the
Mailbox listens on 127.0.0.1:443 and /etc/netns/<ns>/hosts (which `ip netns exec` mounts over
/etc/hosts) maps the domain's names to it. Needs root (scripts/test.sh runs as root) and Node
with the project's node_modules (scripts/test.sh runs `npm ci`).

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_ews_js.py -q
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import DEMO_PASSWORD, DOMAIN, REPO, Tandem

PROJECT = REPO / "tests" / "interop" / "ews-js"
NODE = shutil.which("node")
ALICE = f"alice@{DOMAIN}"
FLOW_BUDGET = 90

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed (scripts/test.sh needs Node and npm)"),
    pytest.mark.timeout(FLOW_BUDGET + 30),
]


class HostsNetNs:
    """A network namespace with only lo, and a hosts file for it that maps the deployment's
    names to 127.0.0.1. Deleted (with the hosts file) at teardown."""

    def __init__(self, names: list[str]):
        self.name = f"tandem-ewsjs-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.etc = Path("/etc/netns") / self.name
        self._ip("netns", "add", self.name)
        try:
            self._ip("-n", self.name, "link", "set", "lo", "up")
            self.etc.mkdir(parents=True, exist_ok=True)
            (self.etc / "hosts").write_text("127.0.0.1 localhost " + " ".join(names) + "\n")
        except BaseException:
            self.delete()
            raise

    def _ip(self, *args: str):
        r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15)
        if r.returncode != 0:
            pytest.fail(f"`ip {' '.join(args)}` failed ({r.returncode}): {r.stderr.strip()} "
                        "(the ews-javascript-api flows need root for a network namespace)", pytrace=False)

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=15)
        shutil.rmtree(self.etc, ignore_errors=True)


@pytest.fixture(scope="module")
def deployment(tandem_bin, tmp_path_factory):
    if not (PROJECT / "node_modules" / "ews-javascript-api").is_dir():
        pytest.fail(f"{PROJECT}/node_modules is missing: run `npm ci` there (scripts/test.sh does)", pytrace=False)
    if shutil.which("ip") is None:
        pytest.fail("the `ip` command (iproute2) is missing", pytrace=False)
    ns = HostsNetNs([DOMAIN, f"autodiscover.{DOMAIN}", f"mail.{DOMAIN}"])
    t = Tandem(tandem_bin, tmp_path_factory.mktemp("ews-js"), prefix=ns.prefix)
    try:
        t.mailbox_https_port = 443  # Its own namespace: 443 is free there, as on an Exchange server.
        t.write_config()
        t.start()
        st = t.status()
        yield {"t": t, "ns": ns, "ca": st["ca_certificate"], "ews": st["mailbox"]["ews_url"]}
    finally:
        t.kill_all()
        ns.delete()


def run_flow(d, name: str, **extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("npm_")}
    env.update(**extra)
    env.update(
        TANDEM_EMAIL=ALICE,
        TANDEM_PASSWORD=DEMO_PASSWORD,
        NODE_EXTRA_CA_CERTS=d["ca"],
        TANDEM_EWS_URL=d["ews"],
        NO_PROXY="*",
    )
    r = subprocess.run(
        [*d["ns"].prefix, NODE, "--test", "--test-reporter=tap", f"flows/{name}.test.js"],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=FLOW_BUDGET,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"{name} flow failed (exit {r.returncode}):\n{out}\n{d['t'].logs()[-4000:]}"
    assert "# fail 0" in r.stdout and "# pass 0" not in r.stdout, out
    return out


def test_autodiscover_url_by_email_address(deployment):
    out = run_flow(deployment, "autodiscover")
    assert f"autodiscovered {deployment['ews']} for {ALICE}".lower() in out.lower(), out


def test_appointments_keep_start_and_end(deployment):
    out = run_flow(deployment, "appointments")
    assert "start 2026-12-03T11:00:00.000Z end 2026-12-03T12:30:00.000Z" in out, out


def test_default_properties(deployment):
    out = run_flow(deployment, "properties")
    assert "# pass 5" in out, out


def test_streaming_subscription_delivers_events(deployment):
    out = run_flow(deployment, "streaming")
    assert "events: " in out and "NewMail" in out, out


def test_push_subscription_posts_to_the_callback(deployment):
    out = run_flow(deployment, "push")
    assert "pushed 1 notification(s)" in out, out


def test_web_client_urls_follow_the_published_owa_url(deployment):
    """InternalWebClientUrls: SettingIsNotAvailable while no OWA URL is published (no web client
    is served yet), then the URL an administrator sets, at once, as a WebClientUrlCollectionSetting."""
    t = deployment["t"]
    out = run_flow(deployment, "webclient", TANDEM_OWA_URL="")
    assert "no web client published" in out, out
    owa = f"https://mail.{DOMAIN}/owa/"
    r = t.run("exchange", "set-client-access-server", "--owa-internal-url", owa, *t.location)
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        out = run_flow(deployment, "webclient", TANDEM_OWA_URL=owa)
        assert f"web client at {owa}" in out, out
    finally:
        t.run("exchange", "set-client-access-server", "--owa-internal-url", "", *t.location)
