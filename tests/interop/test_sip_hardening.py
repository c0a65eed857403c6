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
