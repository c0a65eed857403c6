"""Front End SIP hardening with real clients (issue 9): routing to the Contact, bounded stream
connections.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_sip_hardening.py -q
"""

from __future__ import annotations

import re
import socket
import ssl
import time

import pytest

import test_sip as sip
from conftest import DEMO_PASSWORD, free_ports


@pytest.fixture
def peers(tmp_path):
    p = sip.Peers(tmp_path / "peers")
    yield p
    p.kill_all()


def test_sipp_register_contact_at_another_port(tandem, peers):
    """A REGISTER sent from port A for `Contact: <sip:bob@127.0.0.1:B>` is reached at B (RFC 3261
    §10.3): the MESSAGE to bob arrives at B and the sender hears B's 200."""
    remote = sip.sip_endpoint(tandem)
    reg_port, contact_port = free_ports(2)
    users = sip.write_users(peers.dir / "bob.csv", [("bob", DEMO_PASSWORD, "bob")])
    reg = peers.sipp("register_contact.xml", remote, "reg-bob-elsewhere", "-key", "expires", "600",
                     "-key", "contact_port", str(contact_port), users=users, port=reg_port, calls=1, budget=20)
    sip.assert_sipp_ok(reg, 1, tandem)
    uas = peers.sipp("message_uas.xml", remote, "bob-at-contact", port=contact_port, calls=1, budget=25,
                     background=True)
    time.sleep(0.5)
    senders = sip.write_users(peers.dir / "alice.csv", [("alice", DEMO_PASSWORD, "bob")])
    run = peers.sipp("message.xml", remote, "alice-to-bob", users=senders, calls=1, budget=20)
    sip.assert_sipp_ok(run, 1, tandem)
    uas.wait(15)
    sip.assert_sipp_ok(uas, 1, tandem)
    got = [m for m in sip.sip_messages(uas.text(uas.messages)) if sip.first_line(m).startswith("MESSAGE ")]
    assert got and "Hello bob, this is alice" in got[0], f"the MESSAGE did not reach bob's Contact\n{uas.report()}"
    finals = [sip.first_line(m) for m in sip.sip_messages(run.text(run.messages))
              if re.match(r"SIP/2\.0 [2-6]", sip.first_line(m))]
    assert finals[-1].startswith("SIP/2.0 200"), f"the sender must hear the contact's 200, got {finals}"


def _options(host: str, port: int, sock: socket.socket, n: int) -> str:
    local = sock.getsockname()
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP {local[0]}:{local[1]};branch=z9hG4bKidle{n}\r\nMax-Forwards: 70\r\n"
        f"From: <sip:probe@litwareinc.com>;tag=p{n}\r\nTo: <sip:{host}:{port}>\r\n"
        f"Call-ID: idle-probe-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )


def _sip_tcp_works(host: str, port: int, n: int) -> bool:
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(_options(host, port, s, n).encode())
        return s.recv(4096).startswith(b"SIP/2.0 200 ")


def _https_works(tandem) -> bool:
    ctx = ssl.create_default_context(cafile=str(tandem.pki_dir / "ca.pem"))
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", tandem.frontend_https_port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: pool.litwareinc.com\r\nConnection: close\r\n\r\n")
            return s.recv(4096).startswith(b"HTTP/1.1 200")


@pytest.mark.timeout(120)
def test_many_idle_tcp_connections_do_not_stop_new_ones(make_tandem):
    """2,000 idle TCP connections from ten source addresses: each source is held to its cap
    (the rest are closed at once), so a new SIP TCP client and a new HTTPS client are still
    served, and the server's open connections stay bounded."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2600:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    t = make_tandem(frontend_extra=(
        "sip_max_stream_connections = 500\n"
        "sip_max_stream_connections_per_source = 20\n"
        "sip_stream_idle_timeout_secs = 60"
    ))
    t.start()
    host, port = "127.0.0.1", t.sip_port
    held: list[socket.socket] = []
    try:
        for i in range(2000):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((f"127.0.0.{2 + i % 10}", 0))
            s.settimeout(5)
            try:
                s.connect((host, port))
            except OSError:
                s.close()
                continue
            held.append(s)
        assert len(held) > 1500, f"only {len(held)} of 2000 connections could be opened"
        time.sleep(1.0)
        # The server closed all but its cap per source: 10 sources × 20.
        alive = 0
        for s in held:
            s.setblocking(False)
            try:
                alive += 0 if s.recv(1) == b"" else 1
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        assert alive <= 10 * 20, f"{alive} idle connections are still open; the per-source cap is 20"
        assert _sip_tcp_works(host, port, 1), f"a new SIP TCP client was not served\n{t.logs()[-4000:]}"
        assert _https_works(t), f"a new HTTPS client was not served\n{t.logs()[-4000:]}"
        assert "SIP connection refused: too many connections" in t.logs(), "the refusals are not logged"
    finally:
        for s in held:
            s.close()
    assert _sip_tcp_works(host, port, 2)


def test_websocket_sip_message_is_limited_to_the_sip_maximum(tandem):
    """A WebSocket message over 65,535 bytes closes the connection (axum's default would buffer
    64 MiB); a normal SIP message on a new connection is still answered."""
    import asyncio

    import websockets

    status = tandem.status()
    url, ca = status["frontend"]["sip_ws"], status["ca_certificate"]

    async def scenario():
        ctx = ssl.create_default_context(cafile=ca)
        async with websockets.connect(url, ssl=ctx, subprotocols=["sip"], max_size=None) as ws:
            await ws.send("OPTIONS sip:litwareinc.com SIP/2.0\r\n" + "X-Pad: " + "a" * 100_000 + "\r\n\r\n")
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        async with websockets.connect(url, ssl=ctx, subprotocols=["sip"]) as ws:
            await ws.send(
                "OPTIONS sip:litwareinc.com SIP/2.0\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKws1\r\n"
                "Max-Forwards: 70\r\nFrom: <sip:probe@litwareinc.com>;tag=w\r\nTo: <sip:litwareinc.com>\r\n"
                "Call-ID: ws-limit\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            reply = await asyncio.wait_for(ws.recv(), 5)
            assert reply.startswith("SIP/2.0 200"), reply

    asyncio.run(scenario())
