"""Voicemail (issue 14, Deliver 8): from the caller's hang-up to the message in the Inbox and to
the message-waiting NOTIFY on the callee's phone.

Starts `tandem up` ($TANDEM_BIN) on free ports, UM-enables Bob (offline, so voicemail answers at
once) and runs `--rounds` rounds of: a SIPp phone subscribes to Bob's message-summary and gets
its first NOTIFY (no); a SIPp caller (tests/interop/sipp/voicemail_call.xml) leaves a 4 s
message and hangs up; exchangelib marks the message read, and the phone's last NOTIFY says no.
Times, per round, from the Front End's log and SIPp's message log (one clock, this machine):
  hangup_to_inbox: the end of the recording (the BYE) to CreateItem's success ("voicemail
                   delivered"): the item is in the Inbox;
  hangup_to_mwi:   the end of the recording to the NOTIFY saying yes at the phone;
  read_to_mwi:     exchangelib's UpdateItem (IsRead) sent to the NOTIFY saying no at the phone.
Prints JSON.

Run: TANDEM_BIN=$CARGO_TARGET_DIR/release/tandem .venv/bin/python bench/voicemail/hangup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

here = Path(__file__).resolve()
sys.path.insert(0, str(here.parents[2] / "tests" / "interop"))
import test_sip as sip  # noqa: E402
from conftest import DEMO_PASSWORD, Tandem, _find_binary  # noqa: E402
from test_oauth import wait_trust  # noqa: E402
from test_voicemail import MWI, alice_calls, um_enable, voicemails  # noqa: E402


def log_times(text: str, needle: str) -> list[float]:
    out = []
    for line in text.splitlines():
        if needle in line:
            stamp = line.split()[0].rstrip("Z")
            out.append(datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.timezone.utc).timestamp())
    return out


def notify_times(path: Path) -> list[tuple[float, str]]:
    """(arrival, body) of each NOTIFY received in a SIPp -trace_msg log."""
    text = path.read_text(errors="replace") if path.exists() else ""
    out = []
    for block in re.split(r"^-{20,} ", text, flags=re.M)[1:]:
        stamp, _, rest = block.partition("\n")
        if "message received" in rest and "\nNOTIFY " in rest:
            t = datetime.datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S.%f").astimezone().timestamp()
            out.append((t, rest))
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    binary = Path(os.environ.get("TANDEM_BIN") or _find_binary())
    root = Path(tempfile.mkdtemp(prefix="tandem-bench-vm-"))
    t = Tandem(binary, root / "t", frontend_extra="media_port_min = 41000\nmedia_port_max = 41999")
    peers = sip.Peers(root / "peers")
    results = {"inbox": [], "mwi": [], "read": []}
    try:
        t.start()
        wait_trust(t)
        st = t.status()
        os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
        ews = st["mailbox"]["ews_url"]
        um_enable(t)
        remote = sip.sip_endpoint(t)
        rows = sip.write_users(peers.dir / "bob-mwi.csv", [("bob", DEMO_PASSWORD, "-")])
        for n in range(args.rounds):
            for item in voicemails(ews):
                item.delete()
            time.sleep(1)  # the counts settle at 0/0 before the phone subscribes
            phone = peers.sipp(MWI, remote, f"phone-{n}", users=rows, calls=1, budget=60, background=True)
            log = Path(phone.messages)
            deadline = time.monotonic() + 20
            while not notify_times(log) and time.monotonic() < deadline:
                time.sleep(0.05)
            alice_calls(peers, t, f"call-{n}")
            deadline = time.monotonic() + 20
            while len(voicemails(ews)) < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            [item] = voicemails(ews)
            while len(notify_times(log)) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            item.is_read = True
            marked = time.time()
            item.save(update_fields=["is_read"])
            phone.wait(30)
            logs = t.logs()
            ended = log_times(logs, "voicemail recorded")[-1]
            delivered = log_times(logs, "voicemail delivered")[-1]
            notes = notify_times(log)
            yes = next(ts for ts, body in notes if "Messages-Waiting: yes" in body)
            no = notes[-1][0]
            results["inbox"].append(delivered - ended)
            results["mwi"].append(yes - ended)
            results["read"].append(no - marked)
            print(f"round {n}: hang-up to Inbox {1000 * (delivered - ended):.1f} ms, to NOTIFY yes "
                  f"{1000 * (yes - ended):.1f} ms; read to NOTIFY no {1000 * (no - marked):.1f} ms", file=sys.stderr)
    finally:
        peers.kill_all()
        t.kill_all()
    summary = {
        name: {"p50_ms": round(1000 * statistics.median(v), 1), "max_ms": round(1000 * max(v), 1), "n": len(v)}
        for name, v in (("hangup_to_inbox", results["inbox"]), ("hangup_to_mwi_notify", results["mwi"]),
                        ("read_to_mwi_notify", results["read"]))
        if v
    }
    print(json.dumps({"rounds": args.rounds, "load": os.getloadavg(), **summary}, indent=2))


if __name__ == "__main__":
    main()
