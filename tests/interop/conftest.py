"""Fixtures for the Tandem interop suite: the binary, and a `Tandem` deployment helper.

The suite drives the real `tandem` binary as an administrator and a client would: it writes a
configuration file, starts `tandem up`, waits with `tandem status --json`, and talks to the
listeners with independent clients (`requests`, the `openssl` CLI). Nothing here links to the
Rust code.

Environment:
  TANDEM_BIN        the binary to test (default: <repo>/target/debug/tandem, then
                    $CARGO_TARGET_DIR/debug/tandem)

Timeouts: no plugin is needed. Every test call is bounded by the `interop_timeout` ini value
(seconds, see pytest.ini) or by `@pytest.mark.timeout(SECONDS)`, enforced with SIGALRM; every
subprocess call and wait has its own budget as well.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "litwareinc.com"
# Known demo password for first starts (TANDEM_DEMO_PASSWORD); at least 8 characters.
DEMO_PASSWORD = "Interop-Demo-Pass-1"
DEMO_USERS = {"alice": "Alice Anderson", "bob": "Bob Brown", "carol": "Carol Clark"}
# Budgets, in seconds.
READY_BUDGET = 15.0
STOP_BUDGET = 10.0
COMMAND_BUDGET = 30.0


# ---------------------------------------------------------------- timeouts (no plugin)


def pytest_addoption(parser):
    parser.addini("interop_timeout", "default per-test time limit in seconds (0: none)", default="60")


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): time limit for one test, overriding interop_timeout")


class InteropTimeout(Exception):
    """Raised inside a test that ran past its time limit."""


def _limit_for(item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("interop_timeout") or 0)


def _with_alarm(item, phase: str):
    seconds = _limit_for(item)
    if seconds <= 0 or not hasattr(signal, "SIGALRM"):
        return None

    def on_alarm(signum, frame):
        raise InteropTimeout(f"{item.nodeid}: {phase} exceeded {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return previous


def _clear_alarm(previous):
    if previous is None:
        return
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    previous = _with_alarm(item, "setup")
    try:
        yield
    finally:
        _clear_alarm(previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    previous = _with_alarm(item, "test")
    try:
        yield
    finally:
        _clear_alarm(previous)


# ---------------------------------------------------------------- the binary


def _find_binary() -> Path:
    env = os.environ.get("TANDEM_BIN")
    if env:
        p = Path(env)
        if not p.is_file() or not os.access(p, os.X_OK):
            pytest.exit(f"TANDEM_BIN={env} is not an executable file", returncode=2)
        return p.resolve()
    candidates = [REPO / "target" / "debug" / "tandem"]
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "tandem")
    for p in candidates:
        if p.is_file() and os.access(p, os.X_OK):
            return p.resolve()
    pytest.exit(
        "no tandem binary: build it with `cargo build -p tandem` or set TANDEM_BIN "
        f"(looked in: {', '.join(str(c) for c in candidates)})",
        returncode=2,
    )


@pytest.fixture(scope="session")
def tandem_bin() -> Path:
    path = _find_binary()
    # The binary may be rebuilt under us; give a brief window for it to reappear.
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    return path


# ---------------------------------------------------------------- ports


def answer_notifies_on_stream(conn: socket.socket, on_notify, running=lambda: True) -> None:
    """Reads SIP messages off a stream connection (framed by Content-Length) and answers each
    NOTIFY 200 on it, calling `on_notify(head, body, arrival)` first. Returns when the peer
    closes or `running()` turns false; closes the connection."""
    import re

    buf = b""
    while running():
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode(errors="replace")
            m = re.search(r"^(?:Content-Length|l):\s*(\d+)", head, re.M | re.I)
            total = end + 4 + (int(m.group(1)) if m else 0)
            if len(buf) >= total:
                body, buf = buf[end + 4:total].decode(errors="replace"), buf[total:]
                if head.startswith("NOTIFY "):
                    now = time.monotonic()
                    keep = [h for h in head.split("\r\n")[1:] if re.match(r"(Via|v|From|f|To|t|Call-ID|i|CSeq):", h, re.I)]
                    conn.sendall(("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode())
                    on_notify(head, body, now)
                continue
        try:
            data = conn.recv(1 << 20)
        except OSError:  # the server went away (reset): the stream is over
            break
        if not data:
            break
        buf += data
    conn.close()


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that are free for TCP and UDP on 127.0.0.1 right now."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                udp.close()
                held.append(tcp)
                continue
            held.extend([tcp, udp])
            ports.append(port)
    finally:
        for s in held:
            s.close()
    return ports


# ---------------------------------------------------------------- processes


class Proc:
    """One running tandem process with its output captured in files."""

    def __init__(self, args: list[str], env: dict, log_dir: Path, name: str):
        self.args = args
        self.name = name
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err, env=env, cwd=log_dir
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def logs(self) -> str:
        rc = self.popen.poll()
        state = "running" if rc is None else f"exited with {rc}"
        return (
            f"--- {self.name}: {' '.join(self.args)} ({state})\n"
            f"--- stdout:\n{self.stdout()}\n--- stderr:\n{self.stderr()}"
        )

    def terminate(self, budget: float = STOP_BUDGET) -> Optional[int]:
        """SIGTERM, wait up to `budget`, then SIGKILL. Returns the exit code, or None when it
        had to be killed."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=budget)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        self._close()
        return self.popen.returncode

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._close()

    def _close(self):
        for f in (self._out, self._err):
            if not f.closed:
                f.close()


class Tandem:
    """A deployment in a temporary folder: config file, data directory, processes."""

    def __init__(
        self,
        binary: Path,
        root: Path,
        domain: str = DOMAIN,
        demo_password: Optional[str] = DEMO_PASSWORD,
        prefix: Optional[list[str]] = None,
        frontend_extra: str = "",
        mailbox_extra: str = "",
        directory_extra: str = "",
        listen_host: str = "127.0.0.1",
    ):
        self.bin = Path(binary)
        # The loopback address every listener binds and the [hosts] names map to; a second
        # organisation in the same network namespace takes another one (127.0.0.2).
        self.listen_host = listen_host
        # A command prefix for every tandem process and command, e.g. ["ip", "netns", "exec", NS]
        # to run the deployment inside a network namespace. Empty: run directly.
        self.prefix = list(prefix or [])
        # Extra `[frontend]` lines, e.g. 'sip_digest_algorithms = ["MD5", "SHA-256"]'.
        self.frontend_extra = frontend_extra
        # Extra `[mailbox]` and `[directory]` lines, e.g. "ews_max_subscriptions_per_account = 5"
        # or "ews_push_minute_seconds = 2".
        self.mailbox_extra = mailbox_extra
        self.directory_extra = directory_extra
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.domain = domain
        self.demo_password = demo_password
        self.data_dir = self.root / "data"
        self.config_file = self.root / "tandem-config.toml"
        (
            self.mailbox_https_port,
            self.frontend_https_port,
            self.sip_port,
            self.sip_tls_port,
        ) = free_ports(4)
        self.procs: list[Proc] = []
        self.proc: Optional[Proc] = None
        self.write_config()

    # ---- configuration

    def config_text(self) -> str:
        d, h = self.domain, self.listen_host
        return (
            "[deployment]\n"
            f'domain = "{d}"\n'
            f'data_dir = "{self.data_dir}"\n'
            "\n[directory]\n"
            f"{self.directory_extra}\n"
            "\n[mailbox]\n"
            f'https_listen = "{h}:{self.mailbox_https_port}"\n'
            f"{self.mailbox_extra}\n"
            "\n[frontend]\n"
            f'https_listen = "{h}:{self.frontend_https_port}"\n'
            f'sip_udp_listen = "{h}:{self.sip_port}"\n'
            f'sip_tcp_listen = "{h}:{self.sip_port}"\n'
            f'sip_tls_listen = "{h}:{self.sip_tls_port}"\n'
            f"{self.frontend_extra}\n"
            "\n[hosts]\n"
            f'"mail.{d}" = "{h}"\n'
            f'"autodiscover.{d}" = "{h}"\n'
            f'"pool.{d}" = "{h}"\n'
            f'"sip.{d}" = "{h}"\n'
        )

    def write_config(self):
        self.config_file.write_text(self.config_text())

    @property
    def location(self) -> list[str]:
        """`--data-dir DIR` for admin commands."""
        return ["--data-dir", str(self.data_dir)]

    @property
    def pki_dir(self) -> Path:
        return self.data_dir / "pki"

    # ---- processes

    def env(self, demo_password: Optional[str] = "default") -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("TANDEM_DEMO_PASSWORD", "RUST_LOG")}
        pw = self.demo_password if demo_password == "default" else demo_password
        if pw is not None:
            env["TANDEM_DEMO_PASSWORD"] = pw
        return env

    def spawn(self, *args: str, name: Optional[str] = None, demo_password: Optional[str] = "default") -> Proc:
        """Starts `tandem ARGS` in the background, output in ROOT/NAME.std{out,err}."""
        self._wait_for_binary()
        name = name or f"proc{len(self.procs) + 1}"
        p = Proc([*self.prefix, str(self.bin), *args], self.env(demo_password), self.root, name)
        self.procs.append(p)
        return p

    def start(self, *extra: str, wait: bool = True) -> Proc:
        """First start: `tandem [EXTRA] up --config FILE`."""
        self.proc = self.spawn(*extra, "up", "--config", str(self.config_file), name=f"up{len(self.procs) + 1}")
        if wait:
            self.wait_ready(self.proc)
        return self.proc

    def restart(self, *extra: str, wait: bool = True, demo_password: Optional[str] = "default") -> Proc:
        """A later start: `tandem up --data-dir DIR` (reuses DIR/tandem.toml)."""
        if self.proc is not None and self.proc.alive():
            self.stop()
        self.proc = self.spawn(
            *extra, "up", *self.location, name=f"up{len(self.procs) + 1}", demo_password=demo_password
        )
        if wait:
            self.wait_ready(self.proc)
        return self.proc

    def wait_ready(
        self,
        proc: Optional[Proc] = None,
        budget: float = READY_BUDGET,
        location: Optional[list[str]] = None,
        procs: Optional[list[Proc]] = None,
    ) -> float:
        """Polls `tandem status --json` until it exits 0. Returns the seconds since `proc` was
        spawned. Fails with the processes' logs when a process exits or the budget runs out."""
        proc = proc or self.proc
        watched = procs or ([proc] if proc else [])
        location = location or self.location
        started = proc.started if proc else time.monotonic()
        deadline = time.monotonic() + budget
        last = None
        while True:
            for p in watched:
                if not p.alive():
                    pytest.fail(f"tandem exited before it was ready\n{p.logs()}", pytrace=False)
            last = self.run("status", *location, "--json", timeout=10)
            if last.returncode == 0:
                return time.monotonic() - started
            if time.monotonic() > deadline:
                logs = "\n".join(p.logs() for p in watched)
                pytest.fail(
                    f"not ready within {budget:g} s; last `status` exit {last.returncode}\n"
                    f"stdout: {last.stdout}\nstderr: {last.stderr}\n{logs}",
                    pytrace=False,
                )
            time.sleep(0.2)

    def stop(self, proc: Optional[Proc] = None, budget: float = STOP_BUDGET) -> int:
        """SIGTERM; a clean stop must exit 0 within `budget`."""
        proc = proc or self.proc
        assert proc is not None, "nothing to stop"
        rc = proc.terminate(budget)
        assert rc is not None, f"tandem did not stop within {budget:g} s of SIGTERM\n{proc.logs()}"
        assert rc == 0, f"tandem exited with {rc} after SIGTERM\n{proc.logs()}"
        return rc

    def kill_all(self):
        for p in self.procs:
            p.kill()

    # ---- commands

    def run(self, *args: str, input: Optional[str] = None, timeout: float = COMMAND_BUDGET, env=None):
        """Runs `tandem ARGS` to completion; returns the CompletedProcess (text)."""
        self._wait_for_binary()
        if args[:2] == ("cs", "get-registrations"):
            # The registrar writes registrations back to its store every 200 ms (write-back,
            # like Kamailio's usrloc db_mode=2); the admin command reads the store.
            time.sleep(0.5)
        return subprocess.run(
            [*self.prefix, str(self.bin), *args],
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env or self.env(None),
            cwd=self.root,
        )

    def status(self, location: Optional[list[str]] = None) -> dict:
        r = self.run("status", *(location or self.location), "--json", timeout=10)
        assert r.stdout.strip(), f"`status --json` printed nothing (exit {r.returncode}): {r.stderr}"
        return json.loads(r.stdout)

    def logs(self) -> str:
        return "\n".join(p.logs() for p in self.procs)

    def _wait_for_binary(self):
        deadline = time.monotonic() + 60
        while not self.bin.exists():
            if time.monotonic() > deadline:
                pytest.fail(f"{self.bin} is missing", pytrace=False)
            time.sleep(0.5)


@pytest.fixture
def make_tandem(tandem_bin, tmp_path):
    """Factory for deployments that are not started yet; all are killed at teardown."""
    made: list[Tandem] = []

    def make(name: str = "t", **kw) -> Tandem:
        t = Tandem(tandem_bin, tmp_path / name, **kw)
        made.append(t)
        return t

    yield make
    for t in made:
        t.kill_all()


@pytest.fixture
def tandem(make_tandem) -> Tandem:
    """A started deployment (`tandem up --config FILE`), killed at teardown."""
    t = make_tandem()
    t.start()
    return t
