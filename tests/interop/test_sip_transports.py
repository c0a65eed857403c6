"""SIP over TLS and WebSocket. WebSocket (RFC 7118) on the Front End HTTPS listener, driven by the independent
`websockets` client library over TLS with our CA: subprotocol negotiation, digest REGISTER,
an IM between a WebSocket user and another WebSocket user, and the end of a registration when
its connection closes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import ssl
import uuid

import websockets

from conftest import DEMO_PASSWORD, DOMAIN


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


class WsUa:
    def __init__(self, ws, user: str):
        self.ws, self.user, self.cseq = ws, user, 0
        self.call_id = uuid.uuid4().hex
        self.host = f"{uuid.uuid4().hex[:8]}.invalid"

    def request(self, method: str, uri: str, to: str, extra: str = "", body: str = "") -> str:
        self.cseq += 1
        return (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/WSS {self.host};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{self.user}@{DOMAIN}>;tag={self.user}1\r\nTo: <{to}>\r\n"
            f"Call-ID: {self.call_id}-{method}\r\nCSeq: {self.cseq} {method}\r\n"
            f"Contact: <sip:{self.user}@{self.host};transport=ws>\r\n{extra}"
            f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
        )

    async def recv_response(self) -> str:
        while True:
            m = await asyncio.wait_for(self.ws.recv(), 5)
            if m.startswith("SIP/2.0 ") and not m.startswith("SIP/2.0 1"):
                return m

    async def send_authenticated(self, method: str, uri: str, to: str, extra: str = "", body: str = "") -> str:
        await self.ws.send(self.request(method, uri, to, extra, body))
        first = await self.recv_response()
        status = first.split(" ")[1]
        if status not in ("401", "407"):
            return first
        nonce = re.search(r'nonce="([^"]+)", algorithm=MD5', first).group(1)
        ha1 = md5(f"{self.user}:{DOMAIN}:{DEMO_PASSWORD}")
        ha2 = md5(f"{method}:{uri}")
        resp = md5(f"{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}")
        header = "Authorization" if status == "401" else "Proxy-Authorization"
        auth = (
            f'{header}: Digest username="{self.user}", realm="{DOMAIN}", nonce="{nonce}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"\r\n'
        )
        await self.ws.send(self.request(method, uri, to, extra + auth, body))
        return await self.recv_response()


def test_register_and_im_over_websocket(tandem):
    status = tandem.status()
    url = status["frontend"]["sip_ws"]
    ca = status["ca_certificate"]

    async def scenario():
        ctx = ssl.create_default_context(cafile=ca)
        async with websockets.connect(url, ssl=ctx, subprotocols=["sip"]) as a, websockets.connect(
            url, ssl=ctx, subprotocols=["sip"]
        ) as b:
            assert a.subprotocol == "sip"
            alice, bob = WsUa(a, "alice"), WsUa(b, "bob")
            for ua in (alice, bob):
                r = await ua.send_authenticated("REGISTER", f"sip:{DOMAIN}", f"sip:{ua.user}@{DOMAIN}", "Expires: 600\r\n")
                assert r.startswith("SIP/2.0 200"), r
            # Alice → Bob: Bob receives the MESSAGE on his WebSocket, answers 200, Alice gets 200.
            send = asyncio.create_task(
                alice.send_authenticated(
                    "MESSAGE", f"sip:bob@{DOMAIN}", f"sip:bob@{DOMAIN}", "Content-Type: text/plain\r\n", "hi over ws"
                )
            )
            incoming = await asyncio.wait_for(b.recv(), 5)
            while not incoming.startswith("MESSAGE "):
                incoming = await asyncio.wait_for(b.recv(), 5)
            assert incoming.endswith("hi over ws")
            head = incoming.split("\r\n\r\n")[0].split("\r\n")
            keep = [h for h in head[1:] if h.split(":")[0].lower() in ("via", "from", "to", "call-id", "cseq")]
            await b.send("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n")
            reply = await send
            assert reply.startswith("SIP/2.0 200"), reply

    asyncio.run(scenario())
    # Both connections closed: their registrations ended with them.
    regs = json.loads(tandem.run("cs", "get-registrations", "--json", *tandem.location).stdout)
    assert [r for r in regs if r["transport"] == "WSS"] == []


class TlsUa:
    """A SIP client over TLS with Python's ssl module (OpenSSL), verifying our certificate."""

    def __init__(self, host: str, port: int, ca: str, user: str, server_name: str):
        import socket

        ctx = ssl.create_default_context(cafile=ca)
        raw = socket.create_connection((host, port), timeout=5)
        self.sock = ctx.wrap_socket(raw, server_hostname=server_name)
        self.user, self.cseq, self.buf = user, 0, b""
        self.local = "%s:%d" % self.sock.getsockname()[:2]

    def request(self, method, uri, to, extra=""):
        self.cseq += 1
        return (
            f"{method} {uri} SIP/2.0\r\nVia: SIP/2.0/TLS {self.local};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{self.user}@{DOMAIN}>;tag=t{self.cseq}\r\nTo: <{to}>\r\n"
            f"Call-ID: tls-{self.user}\r\nCSeq: {self.cseq} {method}\r\n"
            f"Contact: <sip:{self.user}@{self.local};transport=tls>\r\n{extra}Content-Length: 0\r\n\r\n"
        ).encode()

    def read_message(self) -> str:
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self.buf = rest[length:]
        return (head + b"\r\n\r\n" + rest[:length]).decode()

    def final(self) -> str:
        while True:
            m = self.read_message()
            if m.startswith("SIP/2.0 ") and not m.startswith("SIP/2.0 1"):
                return m


def test_options_and_register_over_tls(tandem):
    status = tandem.status()
    host, port = status["frontend"]["sip_tls"].rsplit(":", 1)
    # The certificate names the pool and sip.<domain>; OpenSSL checks it against the name we dial.
    ua = TlsUa(host, int(port), status["ca_certificate"], "bob", f"sip.{DOMAIN}")
    ua.sock.sendall(ua.request("OPTIONS", f"sip:{host}:{port}", f"sip:{host}:{port}"))
    assert ua.final().startswith("SIP/2.0 200")
    ua.sock.sendall(ua.request("REGISTER", f"sip:{DOMAIN}", f"sip:bob@{DOMAIN}", "Expires: 600\r\n"))
    challenge = ua.final()
    assert challenge.startswith("SIP/2.0 401"), challenge
    nonce = re.search(r'nonce="([^"]+)", algorithm=SHA-256', challenge).group(1)
    # SHA-256 digest (RFC 8760) this time.
    sha = lambda s: hashlib.sha256(s.encode()).hexdigest()  # noqa: E731
    ha1, ha2 = sha(f"bob:{DOMAIN}:{DEMO_PASSWORD}"), sha(f"REGISTER:sip:{DOMAIN}")
    resp = sha(f"{ha1}:{nonce}:00000001:beef:auth:{ha2}")
    auth = (
        f'Authorization: Digest username="bob", realm="{DOMAIN}", nonce="{nonce}", uri="sip:{DOMAIN}", '
        f'response="{resp}", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="beef"\r\n'
    )
    ua.sock.sendall(ua.request("REGISTER", f"sip:{DOMAIN}", f"sip:bob@{DOMAIN}", "Expires: 600\r\n" + auth))
    ok = ua.final()
    assert ok.startswith("SIP/2.0 200"), ok
    regs = json.loads(tandem.run("cs", "get-registrations", "--user", "bob", "--json", *tandem.location).stdout)
    assert [r["transport"] for r in regs] == ["TLS"]
    # Replaying the same nonce-count is refused: a fresh challenge (stale) or 403, never 200.
    ua.sock.sendall(ua.request("REGISTER", f"sip:{DOMAIN}", f"sip:bob@{DOMAIN}", "Expires: 600\r\n" + auth))
    replay = ua.final()
    assert not replay.startswith("SIP/2.0 200"), replay
    ua.sock.close()
