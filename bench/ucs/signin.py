"""Contact-list sign-in (issue 12, Deliver 7): a user with 250 contacts (Skype for Business's
default MaxContacts) subscribes to their list (`sip:alice-contacts@<domain>`, RFC 4662 with
`Supported: eventlist`); the time from the SUBSCRIBE to the NOTIFY whose RLMI names all 250 is
taken, first with the Front End's list watch cold (Autodiscover, GetImItemList through EWS),
then warm. NOTIFYs over 1,300 bytes come over TCP (RFC 3261 §18.1.1), to the watcher's port. The list is filled in one XCAP PUT of the whole document (timed too), so this also
measures the XCAP path.

Starts `tandem up` ($TANDEM_BIN) on free ports with 250 extra users imported, and prints JSON.

Run: TANDEM_BIN=$CARGO_TARGET_DIR/release/tandem .venv/bin/python bench/ucs/signin.py [--contacts 250] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

here = Path(__file__).resolve()
sys.path.insert(0, str(here.parents[2] / "tests" / "interop"))
sys.path.insert(0, str(here.parents[1] / "presence"))
from conftest import DEMO_PASSWORD, DOMAIN, Tandem, answer_notifies_on_stream  # noqa: E402
from watchers import Sip  # noqa: E402

RL = "urn:ietf:params:xml:ns:resource-lists"


class ListSip(Sip):
    """The watchers' SIP client, subscribing to resource lists (RFC 4662)."""

    def __init__(self, server, password):
        self.bodies: dict[str, list[tuple[float, int]]] = {}
        super().__init__(server, password)
        # A full-state NOTIFY of a large list is more than a datagram holds: the Front End sends
        # it over a TCP connection to the address the SUBSCRIBE came from (RFC 3261 §18.1.1),
        # so the UDP port takes TCP connections too, as a client's would.
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._stream, args=(conn,), daemon=True).start()

    def _stream(self, conn):
        def heard(head, body, now):
            cid = re.search(r"^(?:Call-ID|i):\s*(\S+)", head, re.M | re.I)
            with self.lock:
                self.on_notify(cid.group(1) if cid else "", now, body)
                self.lock.notify_all()

        answer_notifies_on_stream(conn, heard, lambda: not self.stop)

    def subscribe_headers(self) -> list[str]:
        return ["Supported: eventlist", "Accept: application/pidf+xml, application/rlmi+xml, multipart/related",
                "Expires: 600"]

    def on_notify(self, call_id: str, now: float, body: str):
        # The RLMI part says how many resources the NOTIFY names.
        self.bodies.setdefault(call_id, []).append((now, body.count("<resource ")))

    def time_to_full_list(self, owner: str, n: int, budget: float = 60.0) -> float | None:
        before = set(self.bodies)
        started = time.monotonic()
        if not self.request("SUBSCRIBE", owner, f"{owner}-contacts"):
            return None
        deadline = started + budget
        with self.lock:
            while time.monotonic() < deadline:
                for cid, got in self.bodies.items():
                    if cid in before:
                        continue
                    for t, count in got:
                        if count >= n:
                            return t - started
                self.lock.wait(0.05)
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=250)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    t = Tandem(Path(os.environ["TANDEM_BIN"]), Path(tempfile.mkdtemp()), frontend_extra="sip_requests_per_second_per_source = 0")
    t.start()
    try:
        csv = t.root / "users.csv"
        csv.write_text("name,display_name,sip_address,primary_smtp_address,password\n" + "".join(
            f"c{i:04d},Contact {i:04d},,,{DEMO_PASSWORD}\n" for i in range(a.contacts)))
        r = t.run("user", "import", "--csv", str(csv), *t.location, timeout=600)
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 60
        while json.loads(t.run("integration", "status", "--json", *t.location).stdout or "{}").get("ok") is not True:
            assert time.monotonic() < deadline, "the integration setup did not finish"
            time.sleep(0.5)
        st = t.status()
        entries = "".join(f'<entry uri="sip:c{i:04d}@{DOMAIN}"/>' for i in range(a.contacts))
        doc = f'<?xml version="1.0"?><resource-lists xmlns="{RL}"><list name="Other Contacts">{entries}</list></resource-lists>'
        url = f"https://pool.{DOMAIN}:{t.frontend_https_port}/xcap/resource-lists/users/sip:alice@{DOMAIN}/index"
        s = time.perf_counter()
        put = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", st["ca_certificate"],
                              "--resolve", f"pool.{DOMAIN}:{t.frontend_https_port}:127.0.0.1", "-u", f"alice:{DEMO_PASSWORD}",
                              "-X", "PUT", "-H", "Content-Type: application/resource-lists+xml", "--data-binary", doc, url],
                             capture_output=True, text=True, timeout=600)
        put_s = time.perf_counter() - s
        assert put.stdout == "200", put.stdout + put.stderr
        sip = ListSip(("127.0.0.1", t.sip_port), DEMO_PASSWORD)
        cold = sip.time_to_full_list("alice", a.contacts)
        warm = [sip.time_to_full_list("alice", a.contacts) for _ in range(a.rounds)]
        warm_ok = [w for w in warm if w is not None]
        print(json.dumps({
            "contacts": a.contacts,
            "xcap_put_whole_document_s": round(put_s, 2),
            "subscribe_to_full_notify_cold_ms": None if cold is None else round(cold * 1000, 1),
            "subscribe_to_full_notify_warm_ms_p50": round(statistics.median(warm_ok) * 1000, 1) if warm_ok else None,
            "warm_rounds": len(warm), "warm_failed": len(warm) - len(warm_ok),
            "load": os.getloadavg(),
        }))
    finally:
        t.kill_all()


if __name__ == "__main__":
    main()
