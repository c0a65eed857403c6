"""Conference join time (issue 15): INVITE to a focus URI → 200 with the SDP answer.

Starts `tandem up` ($TANDEM_BIN) on free ports, creates a conference open to the organisation
(`tandem cs new-conference --access-level SameEnterprise`) and, `--rounds` times, has Bob join
over TCP (the digest-authenticated INVITE; the 407 round before it is not counted), ACK, then
leave with a BYE. Prints JSON: the INVITE→200 times' median, p95 and max in milliseconds.

Run: TANDEM_BIN=$CARGO_TARGET_DIR/release/tandem .venv/bin/python bench/conference/join.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
from pathlib import Path

here = Path(__file__).resolve()
sys.path.insert(0, str(here.parents[2] / "tests" / "interop"))
import test_sip as sip  # noqa: E402
from conftest import DEMO_PASSWORD, Tandem, _find_binary  # noqa: E402
from test_conferences import SipTcp, new_conference, silent_offer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    binary = Path(os.environ.get("TANDEM_BIN") or _find_binary())
    root = Path(tempfile.mkdtemp(prefix="tandem-bench-conf-"))
    t = Tandem(binary, root / "t", frontend_extra="media_port_min = 42000\nmedia_port_max = 42999")
    times = []
    try:
        t.start()
        conf = new_conference(t, "--organizer", "alice", "--access-level", "SameEnterprise")
        focus = conf["FocusUri"]
        host, port = sip.sip_endpoint(t)
        bob = SipTcp(socket.create_connection((host, port), timeout=5), "bob", DEMO_PASSWORD)
        for n in range(args.rounds):
            r, _ = bob.send("INVITE", focus, body=silent_offer(5000 + 2 * (n % 500)), ctype="application/sdp")
            assert r.startswith("SIP/2.0 200"), r.splitlines()[0]
            times.append(bob.last_elapsed * 1000)
            bob.in_dialog("ACK", r, focus)
            call_id = bob.in_dialog("BYE", r, focus, seq=99)
            bob.response(call_id, "BYE", 5)
    finally:
        t.kill_all()
    times.sort()
    print(json.dumps({
        "rounds": len(times),
        "invite_to_200_ms_median": round(statistics.median(times), 2),
        "invite_to_200_ms_p95": round(times[int(len(times) * 0.95) - 1], 2),
        "invite_to_200_ms_max": round(times[-1], 2),
    }))


if __name__ == "__main__":
    main()
