"""Front End SIP with real, independently written SIP clients (issue 5).

sipsak (OPTIONS, digest REGISTER), SIPp scenarios from bench/sip/scenarios (digest REGISTER,
MESSAGE, PUBLISH, SUBSCRIBE/NOTIFY, INVITE/BYE, CANCEL), two baresip instances driven through
ctrl_tcp and linphonec, in a network namespace each test creates (baresip puts the default
interface's address in its SDP and liblinphone wants a default route; see
shared/reference/real-clients.md §3).

The peers are Debian packages: scripts/install-sip-peers.sh installs them (the test command runs
it). A missing peer is a failure with that hint, never a skip.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_sip.py -q
"""

from __future__ import annotations

import ctypes
import glob
import json
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
import wave
from pathlib import Path
from typing import Optional

import pytest

from conftest import DEMO_PASSWORD, DOMAIN, REPO, Tandem, free_ports

SCENARIOS = REPO / "bench" / "sip" / "scenarios"
INSTALL_HINT = "install the SIP peers with scripts/install-sip-peers.sh (the test command runs it)"
USERS = ("alice", "bob", "carol")


# ---------------------------------------------------------------- helpers


def need(binary: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None)
    if not path:
        pytest.fail(f"`{binary}` is not installed: {INSTALL_HINT}", pytrace=False)
    return path


def sip_endpoint(t: Tandem) -> tuple[str, int]:
    """The live SIP UDP address from `tandem status --json`."""
    st = t.status()
    addr = st.get("frontend", {}).get("sip_udp")
    assert addr, f"`status --json` has no frontend.sip_udp: {json.dumps(st)[:2000]}"
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def auth_row(user: str, password: str, target: str) -> str:
    # SIPp 3.6.1 does not expand [fieldN] inside [authentication …], but expands the whole
    # keyword when it comes from an injection field (bench/sip/scenarios/*.xml use [field1]).
    return f"{user};[authentication username={user} password={password}];{target}"


def write_users(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("SEQUENTIAL\n" + "".join(auth_row(*r) + "\n" for r in rows))
    return path


def kill_group(p: subprocess.Popen):
    """SIGKILL to the process group of a peer we started (baresip can ignore SIGTERM)."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class SippRun:
    """One SIPp run: its files and its counters."""

    def __init__(self, name: str, workdir: Path):
        self.name = name
        self.dir = workdir
        self.screen = workdir / f"{name}.screen.log"
        self.messages = workdir / f"{name}.messages.log"
        self.errors = workdir / f"{name}.errors.log"
        self.out = workdir / f"{name}.out"
        self.rc: Optional[int] = None
        self.popen: Optional[subprocess.Popen] = None

    def text(self, p: Path) -> str:
        return p.read_text(errors="replace") if p.exists() else ""

    def counter(self, label: str) -> int:
        # "  Successful call        |        0                  |        3"
        found = re.findall(rf"^\s*{label}\s*\|\s*\d+\s*\|\s*(\d+)", self.text(self.screen), re.M)
        return int(found[-1]) if found else -1

    @property
    def successful(self) -> int:
        return self.counter("Successful call")

    @property
    def failed(self) -> int:
        return self.counter("Failed call")

    def report(self) -> str:
        screen = self.text(self.screen)
        tail = screen[-4000:]
        msgs = self.text(self.messages)
        return (
            f"--- sipp {self.name}: exit {self.rc}, successful {self.successful}, failed {self.failed}\n"
            f"--- screen (tail):\n{tail}\n--- errors:\n{self.text(self.errors)[-3000:]}\n"
            f"--- output:\n{self.text(self.out)[-2000:]}\n--- SIP messages (first 12000 chars):\n{msgs[:12000]}"
        )

    def wait(self, budget: float) -> int:
        assert self.popen is not None
        try:
            self.rc = self.popen.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.rc if self.rc is not None else -9

    def kill(self):
        if self.popen is not None:
            kill_group(self.popen)
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.popen is not None:
            self.rc = self.popen.returncode


class Peers:
    """Starts peer processes and kills them all at teardown."""

    def __init__(self, workdir: Path, prefix: Optional[list[str]] = None):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prefix = list(prefix or [])
        self.procs: list[subprocess.Popen] = []

    def popen(self, args: list[str], log: Path, budget: float, stdin=subprocess.DEVNULL, **kw) -> subprocess.Popen:
        # `timeout -k` bounds every peer even if this process dies; SIGKILL 3 s after SIGTERM.
        full = ["timeout", "-k", "3", str(int(budget)), *self.prefix, *args]
        f = open(log, "wb")
        # Own process group, so teardown kills the peer and `timeout` together by group id.
        p = subprocess.Popen(full, stdin=stdin, stdout=f, stderr=subprocess.STDOUT, cwd=self.dir,
                             start_new_session=True, **kw)
        f.close()
        self.procs.append(p)
        return p

    def sipp(
        self,
        scenario: str,
        remote: tuple[str, int],
        name: str,
        *extra: str,
        users: Optional[Path] = None,
        port: Optional[int] = None,
        calls: int = 1,
        rate: float = 10,
        budget: float = 30,
        background: bool = False,
    ) -> SippRun:
        need("sipp")
        run = SippRun(name, self.dir)
        args = [
            "sipp", "-sf", str(SCENARIOS / scenario),
            "-m", str(calls), "-r", str(rate), "-l", str(max(calls, 1)),
            "-nostdin", "-trace_screen", "-trace_msg", "-trace_err",
            "-screen_file", str(run.screen), "-message_file", str(run.messages), "-error_file", str(run.errors),
            "-timeout", f"{int(budget)}s", "-timeout_error", "-i", "127.0.0.1",
            "-mp", str(free_ports(1)[0]),
        ]
        if users is not None:
            args += ["-inf", str(users)]
        # Always an explicit local port: SIPp's default is 5060.
        args += ["-p", str(port if port is not None else free_ports(1)[0])]
        args += [*extra, f"{remote[0]}:{remote[1]}"]
        run.popen = self.popen(args, run.out, budget + 10)
        if not background:
            run.wait(budget + 15)
        return run

    def kill_all(self):
        for p in self.procs:
            kill_group(p)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def peers(tmp_path):
    p = Peers(tmp_path / "peers")
    yield p
    p.kill_all()


def assert_sipp_ok(run: SippRun, calls: int, t: Optional[Tandem] = None):
    logs = f"\n{t.logs()[-6000:]}" if t is not None else ""
    assert run.failed == 0 and run.successful == calls, (
        f"SIPp {run.name}: expected {calls} successful and 0 failed calls{logs}\n{run.report()}"
    )


def register(peers: Peers, remote, users: Path, port: int, name: str, calls: int, expires: int = 600):
    run = peers.sipp("register_digest.xml", remote, name, "-key", "expires", str(expires),
                     users=users, port=port, calls=calls, rate=20, budget=20)
    assert_sipp_ok(run, calls)
    return run


def sip_messages(text: str) -> list[str]:
    """The SIP messages of a SIPp -trace_msg log, one string each."""
    parts = re.split(r"^-{20,}.*$", text, flags=re.M)
    out = []
    for part in parts:
        lines = part.strip("\n").splitlines()
        # drop the "UDP message sent (N bytes):" line and blank lines before the start line
        while lines and (not lines[0].strip() or re.match(r"^\w+ message (sent|received)", lines[0])):
            lines.pop(0)
        if lines:
            out.append("\n".join(lines))
    return out


def first_line(msg: str) -> str:
    return msg.splitlines()[0] if msg else ""


# ---------------------------------------------------------------- 1, 2: sipsak


def sipsak(*args: str, budget: float = 20) -> subprocess.CompletedProcess:
    need("sipsak")
    return subprocess.run(["timeout", "-k", "3", str(int(budget)), "sipsak", *args],
                          capture_output=True, text=True, timeout=budget + 10, stdin=subprocess.DEVNULL)


def test_sipsak_options_ping(tandem):
    host, port = sip_endpoint(tandem)
    r = sipsak("-vv", "-s", f"sip:{host}:{port}")
    out = r.stdout + r.stderr
    assert r.returncode == 0 and re.search(r"SIP/2\.0 200 ", out), (
        f"OPTIONS to the server must be answered 200 without authentication; sipsak exit {r.returncode}\n{out}\n"
        f"{tandem.logs()[-4000:]}"
    )


def test_sipsak_digest_register(tandem):
    host, port = sip_endpoint(tandem)
    contact_port = free_ports(1)[0]
    # -u: sipsak 0.9.8.1 otherwise derives the digest username from the URI as "alice@".
    base = ["-U", "-C", f"sip:alice@{host}:{contact_port}", "-x", "600", "-u", "alice",
            "-s", f"sip:alice@{host}:{port}", "-H", host, "-vvv"]
    ok = sipsak(*base, "-a", DEMO_PASSWORD)
    out = ok.stdout + ok.stderr
    assert ok.returncode == 0 and "OK" in out and "401" in out, (
        f"digest REGISTER for alice (401 then 200) failed: sipsak exit {ok.returncode}\n{out}\n{tandem.logs()[-4000:]}"
    )
    assert "algorithm=MD5" in out, f"sipsak (MD5 only) must be offered an MD5 challenge:\n{out}"

    regs = tandem.run("cs", "get-registrations", "--user", "alice", *tandem.location, "--json", timeout=15)
    assert regs.returncode == 0, f"cs get-registrations: {regs.stdout}{regs.stderr}"
    assert str(contact_port) in regs.stdout, f"alice's sipsak contact is not listed:\n{regs.stdout}"

    bad = sipsak(*base, "-a", "not-the-password")
    bad_out = bad.stdout + bad.stderr
    assert bad.returncode != 0 and not re.search(r"^SIP/2\.0 200 ", bad_out, re.M), (
        f"a wrong password must not register: sipsak exit {bad.returncode}\n{bad_out}"
    )
    assert re.search(r"SIP/2\.0 (401|403) ", bad_out), f"expected 401/403 for a wrong password:\n{bad_out}"


# ---------------------------------------------------------------- 3: SIPp REGISTER


def test_sipp_register_digest(tandem, peers):
    remote = sip_endpoint(tandem)
    users = write_users(peers.dir / "users.csv", [(u, DEMO_PASSWORD, u) for u in USERS])
    port = free_ports(1)[0]
    run = peers.sipp("register_digest.xml", remote, "register", "-key", "expires", "600",
                     users=users, port=port, calls=3, rate=10, budget=20)
    assert_sipp_ok(run, 3, tandem)
    msgs = sip_messages(run.text(run.messages))
    challenges = [m for m in msgs if first_line(m).startswith("SIP/2.0 401")]
    assert len(challenges) == 3, f"each REGISTER must be challenged once with 401\n{run.report()}"
    for c in challenges:
        assert re.search(r'^WWW-Authenticate:\s*Digest .*realm="litwareinc\.com"', c, re.M | re.I), c
        assert re.search(r"qop=\"?auth", c, re.I), f"challenge without qop=auth:\n{c}"
    oks = [m for m in msgs if first_line(m).startswith("SIP/2.0 200")]
    for m in oks:
        assert re.search(rf"^(Contact|m):.*127\.0\.0\.1:{port}.*expires=\d+", m, re.M | re.I), (
            f"the 200 to REGISTER must list the binding with its expires:\n{m}"
        )
    regs = tandem.run("cs", "get-registrations", *tandem.location, "--json", timeout=15)
    assert regs.returncode == 0, f"cs get-registrations: {regs.stdout}{regs.stderr}"
    for u in USERS:
        assert u in regs.stdout, f"{u} missing from `cs get-registrations`:\n{regs.stdout}"

    # Un-register (Expires: 0) with the same digest flow.
    run0 = peers.sipp("register_digest.xml", remote, "unregister", "-key", "expires", "0",
                      users=users, port=port, calls=3, rate=10, budget=20)
    assert_sipp_ok(run0, 3, tandem)
    regs = tandem.run("cs", "get-registrations", "--user", "bob", *tandem.location, "--json", timeout=15)
    assert f"127.0.0.1:{port}" not in regs.stdout, f"bob is still registered after Expires: 0:\n{regs.stdout}"


# ---------------------------------------------------------------- 4: SIPp MESSAGE


def test_sipp_message(tandem, peers):
    remote = sip_endpoint(tandem)
    bob_port = free_ports(1)[0]
    register(peers, remote, write_users(peers.dir / "bob.csv", [("bob", DEMO_PASSWORD, "bob")]), bob_port, "reg-bob", 1)
    uas = peers.sipp("message_uas.xml", remote, "bob-uas", port=bob_port, calls=1, budget=25, background=True)
    time.sleep(0.5)
    senders = write_users(peers.dir / "alice.csv", [("alice", DEMO_PASSWORD, "bob")])
    run = peers.sipp("message.xml", remote, "alice-to-bob", users=senders, calls=1, budget=20)
    assert_sipp_ok(run, 1, tandem)
    uas.wait(15)
    assert_sipp_ok(uas, 1, tandem)
    got = [m for m in sip_messages(uas.text(uas.messages)) if first_line(m).startswith("MESSAGE ")]
    assert got, f"bob's UAS received no MESSAGE\n{uas.report()}"
    assert "Hello bob, this is alice" in got[0], f"body not delivered intact:\n{got[0]}"
    assert re.search(r"^(From|f):.*sip:alice@litwareinc\.com", got[0], re.M | re.I), f"From is not alice:\n{got[0]}"
    finals = [first_line(m) for m in sip_messages(run.text(run.messages)) if re.match(r"SIP/2\.0 [2-6]", first_line(m))]
    assert finals and finals[0].startswith("SIP/2.0 407"), f"MESSAGE must be challenged with 407 first, got {finals}"
    assert finals[-1].startswith("SIP/2.0 200"), f"sender must get 200 when delivered, got {finals}"

    # carol has no endpoint: the message is stored and the sender gets 202.
    offline = write_users(peers.dir / "alice-carol.csv", [("alice", DEMO_PASSWORD, "carol")])
    run2 = peers.sipp("message.xml", remote, "alice-to-carol", users=offline, calls=1, budget=20)
    assert_sipp_ok(run2, 1, tandem)
    finals2 = [first_line(m) for m in sip_messages(run2.text(run2.messages)) if re.match(r"SIP/2\.0 [2-6]", first_line(m))]
    assert finals2[-1].startswith("SIP/2.0 202"), f"offline target: expected 202, got {finals2}"

    # An unknown user: 404 (the scenario then fails, which is expected).
    unknown = write_users(peers.dir / "alice-nobody.csv", [("alice", DEMO_PASSWORD, "nobody-here")])
    run3 = peers.sipp("message.xml", remote, "alice-to-nobody", users=unknown, calls=1, budget=20)
    finals3 = [first_line(m) for m in sip_messages(run3.text(run3.messages)) if re.match(r"SIP/2\.0 [2-6]", first_line(m))]
    assert finals3 and finals3[-1].startswith("SIP/2.0 404"), f"unknown target: expected 404, got {finals3}"

    # Last: the credentials alice gave the server (realm litwareinc.com) were for the server;
    # they are consumed there (RFC 3261 §22.3, hop-by-hop) and must not reach bob, who could
    # otherwise replay alice's digest response.
    assert not re.search(r"^Proxy-Authorization:", got[0], re.M | re.I), (
        f"the server forwarded alice's Proxy-Authorization to bob:\n{got[0]}"
    )


# ---------------------------------------------------------------- 5: PUBLISH + SUBSCRIBE/NOTIFY


def test_sipp_publish_subscribe_notify(tandem, peers):
    remote = sip_endpoint(tandem)
    # bob publishes (live for ~4 s: initial, refresh after 2 s, removal after 4 s).
    pub = peers.sipp("publish.xml", remote, "bob-publish",
                     users=write_users(peers.dir / "bob.csv", [("bob", DEMO_PASSWORD, "bob")]),
                     calls=1, budget=25, background=True)
    time.sleep(1.0)
    sub = peers.sipp("subscribe_notify.xml", remote, "alice-watch-bob", "-aa",
                     users=write_users(peers.dir / "alice.csv", [("alice", DEMO_PASSWORD, "bob")]),
                     calls=1, budget=20)
    pub.wait(20)
    assert_sipp_ok(pub, 1, tandem)
    assert_sipp_ok(sub, 1, tandem)

    pmsgs = sip_messages(pub.text(pub.messages))
    p200 = [m for m in pmsgs if first_line(m).startswith("SIP/2.0 200")]
    assert p200 and all(re.search(r"^SIP-ETag:\s*\S+", m, re.M | re.I) for m in p200[:2]), (
        f"200 to PUBLISH must carry SIP-ETag (RFC 3903 §11.3):\n{pub.report()}"
    )
    assert all(re.search(r"^Expires:\s*\d+", m, re.M | re.I) for m in p200), f"200 to PUBLISH needs Expires:\n{pub.report()}"

    smsgs = sip_messages(sub.text(sub.messages))
    sub_ok = [m for m in smsgs if re.match(r"SIP/2\.0 20[02]", first_line(m)) and re.search(r"^CSeq:\s*\d+ SUBSCRIBE", m, re.M | re.I)]
    assert sub_ok, sub.report()
    assert re.search(r"^(Contact|m):", sub_ok[0], re.M | re.I), f"2xx to SUBSCRIBE must have a Contact (RFC 6665 §4.2.1.1):\n{sub_ok[0]}"
    assert re.search(r"^Expires:", sub_ok[0], re.M | re.I), f"2xx to SUBSCRIBE must have Expires:\n{sub_ok[0]}"
    notifies = [m for m in smsgs if first_line(m).startswith("NOTIFY ")]
    assert len(notifies) >= 2, f"expected the initial and the final NOTIFY\n{sub.report()}"
    first, last = notifies[0], notifies[-1]
    assert re.search(r"^(Event|o):\s*presence", first, re.M | re.I), first
    assert re.search(r"^Subscription-State:\s*active", first, re.M | re.I), first
    assert re.search(r"^(Content-Type|c):\s*application/pidf\+xml", first, re.M | re.I), (
        f"initial NOTIFY must carry a PIDF body:\n{first}"
    )
    assert "<basic>open</basic>" in first.replace(" ", ""), f"bob published open; NOTIFY says otherwise:\n{first}"
    assert "on-the-phone" in first, f"bob's RPID activity is lost in the NOTIFY:\n{first}"
    assert re.search(r'entity="(sip|pres):bob@litwareinc\.com"', first), f"presentity is not bob:\n{first}"
    assert re.search(r"^Subscription-State:\s*terminated", last, re.M | re.I), (
        f"the un-subscribe must produce a final NOTIFY with Subscription-State: terminated:\n{last}"
    )


# ---------------------------------------------------------------- 6: INVITE/BYE and CANCEL


def test_sipp_invite_bye(tandem, peers):
    remote = sip_endpoint(tandem)
    bob_port = free_ports(1)[0]
    register(peers, remote, write_users(peers.dir / "bob.csv", [("bob", DEMO_PASSWORD, "bob")]), bob_port, "reg-bob", 1)
    uas = peers.sipp("invite_uas.xml", remote, "bob-uas", port=bob_port, calls=1, budget=25, background=True)
    time.sleep(0.5)
    run = peers.sipp("invite_bye.xml", remote, "alice-calls-bob",
                     users=write_users(peers.dir / "alice.csv", [("alice", DEMO_PASSWORD, "bob")]),
                     calls=1, budget=20)
    uas.wait(15)
    assert_sipp_ok(run, 1, tandem)
    assert_sipp_ok(uas, 1, tandem)
    umsgs = sip_messages(uas.text(uas.messages))
    inv = [m for m in umsgs if first_line(m).startswith("INVITE ")]
    assert inv and re.search(r"^Record-Route:", inv[0], re.M | re.I), f"the proxied INVITE must carry Record-Route:\n{uas.report()}"
    assert re.search(r"^INVITE sip:bob@127\.0\.0\.1:%d" % bob_port, inv[0]), (
        f"Request-URI must be bob's registered contact:\n{inv[0]}"
    )
    assert any(first_line(m).startswith("ACK ") for m in umsgs), f"the ACK for the 200 never reached bob\n{uas.report()}"
    assert any(first_line(m).startswith("BYE ") for m in umsgs), f"the BYE never reached bob\n{uas.report()}"
    # Credentials for the server's realm are consumed there (RFC 3261 §22.3), not passed to bob.
    assert not re.search(r"^Proxy-Authorization:", inv[0], re.M | re.I), (
        f"the server forwarded alice's Proxy-Authorization to bob:\n{inv[0]}"
    )


def test_sipp_cancel(tandem, peers):
    remote = sip_endpoint(tandem)
    bob_port = free_ports(1)[0]
    register(peers, remote, write_users(peers.dir / "bob.csv", [("bob", DEMO_PASSWORD, "bob")]), bob_port, "reg-bob", 1)
    uas = peers.sipp("cancel_uas.xml", remote, "bob-rings", port=bob_port, calls=1, budget=25, background=True)
    time.sleep(0.5)
    run = peers.sipp("cancel.xml", remote, "alice-cancels",
                     users=write_users(peers.dir / "alice.csv", [("alice", DEMO_PASSWORD, "bob")]),
                     calls=1, budget=20)
    uas.wait(15)
    assert_sipp_ok(run, 1, tandem)
    assert_sipp_ok(uas, 1, tandem)


# ---------------------------------------------------------------- network namespace

CLONE_NEWNET = 0x40000000


class NetNs:
    """A network namespace with lo up and a veth pair v0/v1 (v0 = 198.18.0.1/24, default route),
    as real-clients.md §3 describes. Deleted at teardown."""

    def __init__(self):
        need("ip")
        self.name = f"tandem-sip-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.addr = "198.18.0.1"
        self._ip("netns", "add", self.name)
        try:
            for cmd in (
                ["link", "set", "lo", "up"],
                ["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                ["addr", "add", f"{self.addr}/24", "dev", "v0"],
                ["link", "set", "v0", "up"],
                ["link", "set", "v1", "up"],
                ["route", "add", "default", "dev", "v0"],
            ):
                self._ip("-n", self.name, *cmd)
        except Exception:
            self.delete()
            raise

    @staticmethod
    def _ip(*args: str):
        r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15)
        if r.returncode != 0:
            pytest.fail(f"`ip {' '.join(args)}` failed ({r.returncode}): {r.stderr.strip()} "
                        "(the SIP client tests need root for network namespaces)", pytrace=False)

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def connect(self, host: str, port: int, budget: float = 10) -> socket.socket:
        """A TCP connection made inside the namespace (setns in a helper thread)."""
        result: dict = {}

        def work():
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    result["error"] = f"setns: errno {ctypes.get_errno()}"
                    return
            finally:
                os.close(fd)
            deadline = time.monotonic() + budget
            while True:
                try:
                    result["sock"] = socket.create_connection((host, port), timeout=2)
                    return
                except OSError as e:
                    if time.monotonic() > deadline:
                        result["error"] = f"connect {host}:{port} in {self.name}: {e}"
                        return
                    time.sleep(0.2)

        th = threading.Thread(target=work, daemon=True)
        th.start()
        th.join(budget + 5)
        if "sock" not in result:
            pytest.fail(result.get("error", "setns thread hung"), pytrace=False)
        return result["sock"]

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=15)


@pytest.fixture
def netns():
    ns = NetNs()
    yield ns
    ns.delete()


@pytest.fixture
def ns_tandem(make_tandem, netns):
    """A deployment started inside the test's network namespace (SIP on its 127.0.0.1)."""
    t = make_tandem(prefix=netns.prefix)
    t.start()
    return t


# ---------------------------------------------------------------- audio


TONE_HZ = 440.0  # alice's source: what bob must hear
BOB_HZ = 660.0  # bob's source, so that each side's recording is told apart
RATE = 8000


def write_tone(path: Path, hz: float = TONE_HZ, seconds: float = 60.0):
    """A 16-bit mono 8 kHz WAV with a 440 Hz sine, longer than any call (baresip ends the call
    when the aufile source reaches its end)."""
    n = int(RATE * seconds)
    frames = b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * hz * i / RATE))) for i in range(n))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(frames)


def dominant_frequency(path: Path) -> tuple[float, float]:
    """(frequency by zero-crossing count over the loud part, seconds of loud audio)."""
    with wave.open(str(path), "rb") as w:
        ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        raw = w.readframes(n)
    assert width == 2, f"{path}: {8 * width}-bit samples, expected 16"
    samples = struct.unpack(f"<{len(raw) // 2}h", raw)[::ch]
    # keep the span between the first and last sample above a threshold
    idx = [i for i, s in enumerate(samples) if abs(s) > 2000]
    if not idx:
        return 0.0, 0.0
    loud = samples[idx[0]: idx[-1] + 1]
    crossings = sum(1 for a, b in zip(loud, loud[1:]) if (a < 0) != (b < 0))
    seconds = len(loud) / rate
    return (crossings / 2.0 / seconds if seconds else 0.0), seconds


# ---------------------------------------------------------------- baresip


class Baresip:
    """One baresip 1.0.0 instance in the namespace, driven through ctrl_tcp (netstring JSON)."""

    def __init__(self, peers: Peers, ns: NetNs, user: str, password: str, sip: tuple[str, int],
                 contacts: list[str], tone: Path, contact_uris: Optional[list[str]] = None):
        need("baresip")
        self.user = user
        self.ns = ns
        self.dir = peers.dir / f"baresip-{user}"
        (self.dir / "rec").mkdir(parents=True, exist_ok=True)
        sip_port, ctrl_port = free_ports(2)
        # TLS takes sip_listen port + 1: keep instances apart (free_ports are random, and the
        # namespace is private, so a collision is only with the other instance).
        rtp = 20000 + (sip_port % 40) * 10
        self.ctrl_port = ctrl_port
        server = f"sip:{sip[0]}:{sip[1]};transport=udp"
        (self.dir / "config").write_text(
            f"sip_listen\t\t127.0.0.1:{sip_port}\n"
            "audio_player\t\talsa,null\n"
            f"audio_source\t\taufile,{tone}\n"
            "audio_alert\t\talsa,null\n"
            f"rtp_ports\t\t{rtp}-{rtp + 9}\n"
            "module_path\t\t/usr/lib/baresip/modules\n"
            "module\t\t\tg711.so\n"
            "module\t\t\talsa.so\n"
            "module\t\t\taufile.so\n"
            "module\t\t\tsndfile.so\n"
            "module_tmp\t\tuuid.so\n"
            "module_tmp\t\taccount.so\n"
            "module_app\t\tcontact.so\n"
            "module_app\t\tmenu.so\n"
            "module_app\t\tpresence.so\n"
            "module_app\t\tctrl_tcp.so\n"
            f"ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}\n"
            f"snd_path\t\t{self.dir / 'rec'}\n"
            "net_interface\t\tv0\n"
        )
        # Not mwi.so: it can spin forever in 1.0.0 (real-clients.md §3.1).
        (self.dir / "accounts").write_text(
            f"<sip:{user}@{DOMAIN}>;auth_user={user};auth_pass={password};outbound=\"{server}\";"
            "answermode=auto;regint=600;pubint=60;mwi=no;audio_codecs=PCMU\n"
        )
        uris = contact_uris if contact_uris is not None else [f"sip:{c}@{DOMAIN}" for c in contacts]
        (self.dir / "contacts").write_text(
            "".join(f'"{c.title()}" <{u}>;presence=p2p\n' for c, u in zip(contacts, uris))
        )
        (self.dir / "current_contact").write_text(f"{uris[0]}\n" if uris else "")
        self.log = self.dir / "stdout.log"
        self.proc = peers.popen(["baresip", "-f", str(self.dir), "-s"], self.log, budget=110)
        self.sock = ns.connect("127.0.0.1", ctrl_port, budget=15)
        self.sock.settimeout(0.2)
        self.buf = b""
        self.events: list[dict] = []
        self.responses: dict[str, dict] = {}
        self.token = 0

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _pump(self, budget: float):
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                chunk = b""
            except OSError:
                return
            if chunk:
                self.buf += chunk
            while True:
                m = re.match(rb"(\d+):", self.buf)
                if not m:
                    break
                n = int(m.group(1))
                start = m.end()
                if len(self.buf) < start + n + 1:
                    break
                body = self.buf[start:start + n]
                self.buf = self.buf[start + n + 1:]
                try:
                    obj = json.loads(body)
                except ValueError:
                    continue
                if obj.get("event"):
                    self.events.append(obj)
                elif obj.get("response"):
                    self.responses[str(obj.get("token"))] = obj
            if not chunk:
                return

    def command(self, cmd: str, params: str = "", budget: float = 10) -> dict:
        self.token += 1
        tok = str(self.token)
        payload = json.dumps({"command": cmd, "params": params, "token": tok}).encode()
        self.sock.sendall(str(len(payload)).encode() + b":" + payload + b",")
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            self._pump(0.3)
            if tok in self.responses:
                return self.responses.pop(tok)
        raise AssertionError(f"baresip {self.user}: no answer to {cmd} {params} within {budget:g} s\n{self.output()[-3000:]}")

    def wait_event(self, pred, what: str, budget: float) -> dict:
        deadline = time.monotonic() + budget
        seen = 0
        while time.monotonic() < deadline:
            for e in self.events[seen:]:
                if pred(e):
                    return e
            seen = len(self.events)
            self._pump(0.3)
        raise AssertionError(
            f"baresip {self.user}: no {what} within {budget:g} s; events: "
            f"{[(e.get('class'), e.get('type'), e.get('param')) for e in self.events]}\n{self.output()[-5000:]}"
        )

    def wait_text(self, pattern: str, what: str, budget: float, source=None) -> str:
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            text = source() if source else self.output()
            m = re.search(pattern, text, re.S)
            if m:
                return m.group(0)
            self._pump(0.3)
        raise AssertionError(f"baresip {self.user}: no {what} within {budget:g} s\n{(source() if source else self.output())[-6000:]}")

    def wait_registered(self, budget: float) -> str:
        """Polls `reginfo` (the REGISTER_OK event may fire before the ctrl_tcp connection)."""
        deadline = time.monotonic() + budget
        data = ""
        while time.monotonic() < deadline:
            data = re.sub(r"\x1b\[[0-9;]*m", "", self.command("reginfo").get("data", ""))
            for line in data.splitlines():
                if f"sip:{self.user}@" in line and re.search(r"\bOK\b", line):
                    return line
            time.sleep(0.5)
        raise AssertionError(f"baresip {self.user} is not registered after {budget:g} s: reginfo {data!r}\n"
                             f"{self.output()[-6000:]}")

    def contact_state(self, who: str) -> str:
        data = re.sub(r"\x1b\[[0-9;]*m", "", self.command("contacts").get("data", ""))
        for line in data.splitlines():
            if f"{who}@" in line:
                return line
        return ""

    def quit(self):
        try:
            self.command("quit", budget=3)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.mark.timeout(150)
def test_baresip_pair(ns_tandem, netns, tmp_path):
    t = ns_tandem
    sip = sip_endpoint(t)
    peers = Peers(tmp_path / "ns-peers", prefix=netns.prefix)
    tone, tone_bob = tmp_path / "tone440.wav", tmp_path / "tone660.wav"
    write_tone(tone, TONE_HZ)
    write_tone(tone_bob, BOB_HZ)
    try:
        alice = Baresip(peers, netns, "alice", DEMO_PASSWORD, sip, ["bob"], tone)
        bob = Baresip(peers, netns, "bob", DEMO_PASSWORD, sip, ["alice"], tone_bob)

        # both register (digest 401 → 200)
        for ua in (alice, bob):
            ua.wait_registered(20)
        regs = t.run("cs", "get-registrations", *t.location, "--json", timeout=15)
        assert "alice" in regs.stdout and "bob" in regs.stdout, f"registrations:\n{regs.stdout}{regs.stderr}"

        # alice watches bob: online (bob's PUBLISH, pubint) ...
        def wait_presence(state: str, budget: float):
            deadline = time.monotonic() + budget
            line = ""
            while time.monotonic() < deadline:
                line = alice.contact_state("bob")
                if state.lower() in line.lower():
                    return line
                time.sleep(0.5)
            raise AssertionError(
                f"alice does not see bob {state} within {budget:g} s (contacts line: {line!r})\n"
                f"--- alice:\n{alice.output()[-5000:]}\n--- bob:\n{bob.output()[-3000:]}\n{t.logs()[-4000:]}"
            )

        wait_presence("online", 20)
        # ... offline ...
        bob.command("presence_offline")
        wait_presence("offline", 20)
        # ... and online again.
        bob.command("presence_online")
        wait_presence("online", 20)

        # MESSAGE alice → bob (baresip 1.0.0 raises no event for it: bob's SIP trace shows it).
        text = f"hello-bob-{uuid.uuid4().hex[:8]}"
        r = alice.command("message", text)
        assert r.get("ok", True), f"message command: {r}"
        bob.wait_text(rf"MESSAGE sip:bob[^\n]*\n.*?{text}", "incoming MESSAGE with the text", 15)
        alice.wait_text(r"SIP/2\.0 200 [^\r\n]*\r?\n(?:[^\r\n]+\r?\n)*?CSeq: \d+ MESSAGE", "200 for the MESSAGE", 15)

        # A call alice → bob with the 440 Hz tone; bob answers automatically.
        r = alice.command("dial", f"sip:bob@{DOMAIN}")
        for ua in (alice, bob):
            ua.wait_event(lambda e: e.get("class") == "call" and e.get("type") == "CALL_ESTABLISHED",
                          "CALL_ESTABLISHED", 20)
        time.sleep(4.0)
        alice.command("hangup")
        for ua in (alice, bob):
            ua.wait_event(lambda e: e.get("class") == "call" and e.get("type") == "CALL_CLOSED", "CALL_CLOSED", 15)
        time.sleep(0.5)
        dumps = sorted(glob.glob(str(bob.dir / "rec" / "*dec*.wav")))
        assert dumps, f"bob recorded no decoded audio in {bob.dir / 'rec'}: {os.listdir(bob.dir / 'rec')}"
        freq, secs = dominant_frequency(Path(dumps[-1]))
        assert secs >= 2.0, f"bob received only {secs:.2f} s of audio ({dumps[-1]})"
        assert abs(freq - TONE_HZ) <= 15, f"bob heard {freq:.1f} Hz, expected {TONE_HZ:g} Hz ({dumps[-1]})"
        back = sorted(glob.glob(str(alice.dir / "rec" / "*dec*.wav")))
        assert back, f"alice recorded no decoded audio: {os.listdir(alice.dir / 'rec')}"
        freq_a, secs_a = dominant_frequency(Path(back[-1]))
        assert secs_a >= 2.0 and abs(freq_a - BOB_HZ) <= 20, (
            f"alice heard {freq_a:.1f} Hz for {secs_a:.2f} s, expected {BOB_HZ:g} Hz ({back[-1]})"
        )
    finally:
        peers.kill_all()


# ---------------------------------------------------------------- 8: linphonec


@pytest.mark.timeout(120)
def test_linphonec_chat(ns_tandem, netns, tmp_path):
    need("linphonec")
    t = ns_tandem
    sip = sip_endpoint(t)
    peers = Peers(tmp_path / "ns-peers", prefix=netns.prefix)
    try:
        # bob: a SIPp UAS registered from its port, answering the MESSAGE with 200.
        bob_port = free_ports(1)[0]
        register(peers, sip, write_users(peers.dir / "bob.csv", [("bob", DEMO_PASSWORD, "bob")]), bob_port, "reg-bob", 1)
        uas = peers.sipp("message_uas.xml", sip, "bob-uas", port=bob_port, calls=1, budget=60, background=True)

        home = tmp_path / "linphone"
        home.mkdir()
        lport = free_ports(1)[0]
        rc = home / "linphonerc"
        rc.write_text(
            "[sip]\n"
            f"sip_port={lport}\n"
            "sip_tcp_port=0\n"
            "sip_tls_port=0\n"
            "default_proxy=-1\n"
            "[sound]\n"
            "playback_dev_id=ALSA: null\n"
            "ringer_dev_id=ALSA: null\n"
            "capture_dev_id=ALSA: null\n"
            "[storage]\n"
            f"uri={home / 'linphone.db'}\n"
            "[misc]\n"
            f"config-uri=\n"
        )
        log = home / "linphonec.log"
        out = home / "stdout.log"
        text = f"hello-from-carol-{uuid.uuid4().hex[:8]}"
        env = dict(os.environ, HOME=str(home))
        lp = peers.popen(["linphonec", "-c", str(rc), "-l", str(log), "-d", "6"], out, budget=80,
                         stdin=subprocess.PIPE, env=env)

        def say(cmd: str):
            lp.stdin.write((cmd + "\n").encode())
            lp.stdin.flush()

        def both() -> str:
            return (out.read_text(errors="replace") if out.exists() else "") + (
                log.read_text(errors="replace") if log.exists() else "")

        def wait_for(pattern: str, what: str, budget: float):
            deadline = time.monotonic() + budget
            while time.monotonic() < deadline:
                if re.search(pattern, both()):
                    return
                if lp.poll() is not None:
                    break
                time.sleep(0.3)
            raise AssertionError(f"linphonec: no {what} within {budget:g} s\n{both()[-8000:]}\n{t.logs()[-3000:]}")

        time.sleep(1.5)
        say(f"register sip:carol@{DOMAIN} sip:{sip[0]}:{sip[1]} {DEMO_PASSWORD}")
        wait_for(r"[Rr]egistration.*(successful|[Oo]k)|LinphoneRegistrationOk|RegistrationOk", "RegistrationOk", 25)
        regs = t.run("cs", "get-registrations", "--user", "carol", *t.location, "--json", timeout=15)
        assert regs.returncode == 0 and str(lport) in regs.stdout, f"carol's linphonec binding is not listed:\n{regs.stdout}{regs.stderr}"

        # The server's address as the domain: linphonec's `register` does not make the proxy the
        # route for `chat`, which would otherwise resolve litwareinc.com in DNS.
        say(f'chat sip:bob@{sip[0]}:{sip[1]} "{text}"')
        uas.wait(25)
        say("quit")
        assert_sipp_ok(uas, 1, t)
        got = [m for m in sip_messages(uas.text(uas.messages)) if first_line(m).startswith("MESSAGE ")]
        assert got and text in got[0], f"bob did not receive carol's chat text\n{uas.report()}"
        assert re.search(r"^(From|f):.*sip:carol@litwareinc\.com", got[0], re.M | re.I), got[0]
    finally:
        peers.kill_all()
