"""Server-side conversation history (issue 13, deliverable 1): two SIP clients (SIPp) exchange
page-mode MESSAGEs through the Front End; after the idle time set with `tandem cs
set-conversation-history-configuration --idle-timeout`, exchangelib finds the transcript in both
users' Conversation History folder (class IPM.Note.Microsoft.Conversation, the first message as
subject, from the initiator to the other, every message in order with its sender, HTML typed by
a user escaped). A clean restart or a kill -9 in the middle of a conversation continues it
into the same item. IMs to a user with no endpoint, or that no endpoint accepted, are a missed
conversation (IPM.Note.Microsoft.Missed) in the recipient's Inbox and Conversation History. A restart in the middle of a conversation continues the same item, and messages
of a conversation whose mailbox is unreachable are written once it is back, exactly once.

The Front End reaches the mailbox only through Autodiscover and EWS with S2S tokens; exchangelib
reads the mailbox as each user with Basic auth, independently of the Front End.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_conversation_history.py -q
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import test_sip as sip
from conftest import DEMO_PASSWORD, DOMAIN, Tandem, free_ports
from test_calendar_presence import account
from test_oauth import wait_trust

SCENARIO = Path(__file__).resolve().parent / "sipp" / "message_text.xml"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
CAROL = f"carol@{DOMAIN}"
CLASS = "IPM.Note.Microsoft.Conversation"
MISSED = "IPM.Note.Microsoft.Missed"
CALL_LOG = "IPM.Note.Microsoft.Conversation.Voice"
MISSED_CALL = "IPM.Note.Microsoft.Missed.Voice"


@pytest.fixture
def peers(tmp_path):
    p = sip.Peers(tmp_path / "peers")
    yield p
    p.kill_all()


class Chat:
    """Alice and Bob as SIPp user agents: each registered from a port where a SIPp UAS answers
    the MESSAGEs sent to them with 200 (486 for the users `declining`); `say` sends one MESSAGE
    with SIPp."""

    def __init__(self, t: Tandem, peers: sip.Peers, to_alice: int, to_bob: int, declining: frozenset = frozenset()):
        self.t, self.peers = t, peers
        self.remote = sip.sip_endpoint(t)
        self.ports = {"alice": free_ports(1)[0], "bob": free_ports(1)[0]}
        self.expect = {"alice": to_alice, "bob": to_bob}
        self.uas: dict[str, sip.SippRun] = {}
        self.sent = 0
        for user, port in self.ports.items():
            users = sip.write_users(peers.dir / f"reg-{user}.csv", [(user, DEMO_PASSWORD, user)])
            sip.register(peers, self.remote, users, port, f"reg-{user}", 1)
            if self.expect[user]:
                scenario = str(SCENARIO.parent / "message_uas_busy.xml") if user in declining else "message_uas.xml"
                self.uas[user] = peers.sipp(scenario, self.remote, f"{user}-uas", port=port,
                                            calls=self.expect[user], budget=170, background=True)
        time.sleep(0.5)

    def say(self, sender: str, to: str, text: str):
        assert ";" not in text, "SIPp's injection fields are split at `;`"
        self.sent += 1
        rows = Path(self.peers.dir / f"say-{self.sent}.csv")
        rows.write_text("SEQUENTIAL\n" + f"{sip.auth_row(sender, DEMO_PASSWORD, to)};{text}\n")
        run = self.peers.sipp(str(SCENARIO), self.remote, f"say-{self.sent}", users=rows, calls=1, budget=20)
        sip.assert_sipp_ok(run, 1, self.t)
        # Seconds in the transcript are whole: keep the messages apart, so their order shows.
        time.sleep(1.1)

    def delivered(self):
        for user, run in self.uas.items():
            run.wait(20)
            sip.assert_sipp_ok(run, self.expect[user], self.t)


def deploy(make_tandem, name: str, idle: int, **kw) -> tuple[Tandem, str]:
    t = make_tandem(name, **kw)
    t.start()
    wait_trust(t)
    st = t.status()
    os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
    ok(t.run("cs", "set-conversation-history-configuration", "--idle-timeout", str(idle), *t.location))
    return t, st["mailbox"]["ews_url"]


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def transcripts(ews: str, address: str, folder: str = "conversation_history") -> list:
    """The items of the user's Conversation History (or another folder of the account), every
    property read with GetItem."""
    acc = account(ews, address)
    ids = list(getattr(acc, folder).all().values_list("id", "changekey"))
    return list(acc.fetch(ids=ids)) if ids else []


def wait_transcripts(t: Tandem, ews: str, address: str, budget: float, count: int = 1,
                     folder: str = "conversation_history") -> list:
    deadline = time.monotonic() + budget
    while True:
        items = transcripts(ews, address, folder)
        if len(items) >= count or time.monotonic() > deadline:
            assert len(items) == count, (
                f"{address}: expected {count} transcript(s) in Conversation History, found {len(items)}\n"
                f"{state(t)}\n{t.logs()[-6000:]}"
            )
            return items
        time.sleep(0.5)


def state(t: Tandem) -> dict:
    r = ok(t.run("cs", "get-conversation-history-configuration", "--json", *t.location))
    return json.loads(r.stdout)


def wait_state(t: Tandem, want, budget: float = 10) -> dict:
    """The configuration and queue (`get-conversation-history-configuration --json`) once `want`
    holds (the store records a write just after the mailbox took it)."""
    deadline = time.monotonic() + budget
    while True:
        cfg = state(t)
        if want(cfg) or time.monotonic() > deadline:
            return cfg
        time.sleep(0.3)


def in_order(body: str, *needles: str):
    at = -1
    for n in needles:
        i = body.find(n, at + 1)
        assert i > at, f"{n!r} missing or out of order in the transcript:\n{body}"
        at = i


@pytest.mark.timeout(150)
def test_a_conversation_lands_in_both_mailboxes_with_html_escaped(make_tandem, peers):
    t, ews = deploy(make_tandem, "history", idle=3)
    cfg = state(t)
    assert (cfg["EnableServerConversationHistory"], cfg["IdleTimeout"], cfg["Folder"], cfg["ItemClass"]) == (
        True, 3, "conversationhistory", CLASS), cfg
    chat = Chat(t, peers, to_alice=1, to_bob=2)
    chat.say("alice", "bob", "Lunch today?")
    chat.say("bob", "alice", "Sure <b>noon</b> & the usual place")
    chat.say("alice", "bob", "<script>alert('x')</script> see you")
    chat.delivered()

    for address in (ALICE, BOB):
        [item] = wait_transcripts(t, ews, address, 30)
        assert item.item_class == CLASS, item.item_class
        assert item.subject == "Lunch today?", item.subject
        assert item.author.email_address == ALICE, f"the initiator is the item's From: {item.author}"
        assert [r.email_address for r in item.to_recipients] == [BOB], item.to_recipients
        body = str(item.body)
        in_order(body, "Started:", "Ended:", "Alice Anderson", "Lunch today?",
                 "Bob Brown", "Sure &lt;b&gt;noon&lt;/b&gt; &amp; the usual place",
                 "Alice Anderson", "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; see you")
        assert "<script>" not in body and "<b>noon" not in body, f"typed HTML must be escaped:\n{body}"
    cfg = wait_state(t, lambda c: (c["OpenConversations"], c["PendingItems"]) == (0, 0))
    assert (cfg["OpenConversations"], cfg["PendingItems"]) == (0, 0), cfg

    # A new conversation after the idle time is a second item, named by its own first message.
    chat2 = Chat(t, peers, to_alice=0, to_bob=1)
    chat2.say("alice", "bob", "One more thing")
    chat2.delivered()
    items = wait_transcripts(t, ews, BOB, 30, count=2)
    assert sorted(i.subject for i in items) == ["Lunch today?", "One more thing"]


@pytest.mark.timeout(170)
def test_a_restart_in_the_middle_continues_the_same_item(make_tandem, peers):
    # The idle time outlasts the restarts, so the conversation goes on across them.
    t, ews = deploy(make_tandem, "history-restart", idle=20)
    chat = Chat(t, peers, to_alice=1, to_bob=3)
    chat.say("alice", "bob", "Before the restart")
    chat.say("bob", "alice", "Still before")
    assert state(t)["OpenConversations"] == 1
    started = time.monotonic()
    t.restart()
    assert time.monotonic() - started < 15, "the restart took longer than the test's idle time allows"
    assert state(t)["OpenConversations"] == 1, "the open conversation is in the store across the restart"
    chat.say("alice", "bob", "After the restart")
    # A kill -9 keeps every message the senders had their answer for (stored in a batch within
    # milliseconds of the answer; `say` waits a second after it).
    t.proc.kill()
    started = time.monotonic()
    t.restart()
    assert time.monotonic() - started < 15, "the restart took longer than the test's idle time allows"
    chat.say("alice", "bob", "After the kill")
    chat.delivered()
    for address in (ALICE, BOB):
        [item] = wait_transcripts(t, ews, address, 60)
        assert item.subject == "Before the restart", item.subject
        in_order(str(item.body), "Before the restart", "Still before", "After the restart", "After the kill")


@pytest.mark.timeout(170)
def test_an_unreachable_mailbox_delays_the_transcript_and_it_is_written_once(make_tandem, peers):
    t, ews = deploy(make_tandem, "history-unreachable", idle=2)
    oauth = json.loads(ok(t.run("cs", "get-oauth-configuration", "--json", *t.location)).stdout)
    good = oauth["ExchangeAutodiscoverUrl"]
    # Nothing listens on port 9 here: Autodiscover, the first hop, fails.
    ok(t.run("cs", "set-oauth-configuration", "--exchange-autodiscover-url",
             f"https://autodiscover.{DOMAIN}:9/autodiscover/autodiscover.svc", *t.location))
    chat = Chat(t, peers, to_alice=0, to_bob=1)
    chat.say("alice", "bob", "Written when the mailbox is back")
    chat.delivered()
    cfg = wait_state(t, lambda c: c["FailingItems"] == 2, budget=30)
    assert (cfg["PendingItems"], cfg["FailingItems"]) == (2, 2), cfg
    assert "Autodiscover" in (cfg["LastError"] or "") or "Dns" in (cfg["LastError"] or ""), cfg
    assert transcripts(ews, ALICE) == [] and transcripts(ews, BOB) == []
    status = json.loads(t.run("integration", "status", "--json", *t.location).stdout)
    his = next(s for s in status["steps"] if s["step"] == "his")
    assert his["status"] == "fail" and "could not be written" in his["reason"], his

    ok(t.run("cs", "set-oauth-configuration", "--exchange-autodiscover-url", good, *t.location))
    for address in (ALICE, BOB):
        [item] = wait_transcripts(t, ews, address, 60)
        assert item.subject == "Written when the mailbox is back"
    assert wait_state(t, lambda c: c["PendingItems"] == 0)["PendingItems"] == 0
    # Never twice: nothing more arrives later.
    time.sleep(3)
    assert len(transcripts(ews, ALICE)) == 1 and len(transcripts(ews, BOB)) == 1


@pytest.mark.timeout(120)
def test_ims_to_a_user_with_no_endpoint_are_a_missed_conversation(make_tandem, peers):
    t, ews = deploy(make_tandem, "history-missed", idle=3)
    chat = Chat(t, peers, to_alice=0, to_bob=0)
    # Carol has no endpoint: each MESSAGE is kept for her (202) and is part of a missed
    # conversation, in her Inbox (so she notices) and her Conversation History.
    chat.say("alice", "carol", "Are you there?")
    chat.say("alice", "carol", "Call me <when> you can & soon")
    for folder in ("inbox", "conversation_history"):
        [item] = wait_transcripts(t, ews, CAROL, 30, folder=folder)
        assert item.item_class == MISSED, (folder, item.item_class)
        assert item.subject == "Are you there?", item.subject
        assert item.author.email_address == ALICE and [r.email_address for r in item.to_recipients] == [CAROL]
        in_order(str(item.body), "Alice Anderson", "Are you there?", "Call me &lt;when&gt; you can &amp; soon")
    cfg = wait_state(t, lambda c: (c["OpenConversations"], c["PendingItems"]) == (0, 0))
    assert (cfg["OpenConversations"], cfg["PendingItems"]) == (0, 0), cfg


@pytest.mark.timeout(120)
def test_an_im_no_endpoint_accepts_is_missed_and_not_in_the_senders_history(make_tandem, peers):
    t, ews = deploy(make_tandem, "history-declined", idle=3)
    # Bob is signed in, but his client declines the IM (486): nobody read it.
    chat = Chat(t, peers, to_alice=0, to_bob=1, declining=frozenset({"bob"}))
    chat.say("alice", "bob", "Did you read this?")
    chat.delivered()
    for folder in ("inbox", "conversation_history"):
        [item] = wait_transcripts(t, ews, BOB, 30, folder=folder)
        assert (item.item_class, item.subject) == (MISSED, "Did you read this?"), folder
    cfg = wait_state(t, lambda c: (c["OpenConversations"], c["PendingItems"]) == (0, 0))
    assert (cfg["OpenConversations"], cfg["PendingItems"]) == (0, 0), cfg
    assert transcripts(ews, ALICE) == [], "a message nobody accepted is not a conversation of the sender's"


@pytest.mark.timeout(150)
def test_calls_leave_a_call_log_for_both_and_missed_calls_for_the_callee(make_tandem, peers):
    t, ews = deploy(make_tandem, "history-calls", idle=3)
    remote = sip.sip_endpoint(t)
    alice_rows = lambda to: sip.write_users(peers.dir / f"alice-{to}.csv", [("alice", DEMO_PASSWORD, to)])

    # Carol is signed out: the call gets 480 and is a missed call for her (SIPp's caller fails).
    peers.sipp("invite_bye.xml", remote, "alice-calls-carol-offline", users=alice_rows("carol"), calls=1, budget=15)
    # Carol signs in and rings; Alice hangs up first (CANCEL, 487): missed again.
    carol_port = free_ports(1)[0]
    sip.register(peers, remote, sip.write_users(peers.dir / "carol.csv", [("carol", DEMO_PASSWORD, "carol")]),
                 carol_port, "reg-carol", 1)
    rings = peers.sipp("cancel_uas.xml", remote, "carol-rings", port=carol_port, calls=1, budget=25, background=True)
    time.sleep(0.5)
    cancel = peers.sipp("cancel.xml", remote, "alice-cancels", users=alice_rows("carol"), calls=1, budget=20)
    rings.wait(15)
    sip.assert_sipp_ok(cancel, 1, t)
    # Bob answers; Alice hangs up after a second (BYE): a call log for both.
    bob_port = free_ports(1)[0]
    sip.register(peers, remote, sip.write_users(peers.dir / "bob.csv", [("bob", DEMO_PASSWORD, "bob")]),
                 bob_port, "reg-bob", 1)
    answers = peers.sipp("invite_uas.xml", remote, "bob-answers", port=bob_port, calls=1, budget=25, background=True)
    time.sleep(0.5)
    call = peers.sipp("invite_bye.xml", remote, "alice-calls-bob", users=alice_rows("bob"), calls=1, budget=20)
    answers.wait(15)
    sip.assert_sipp_ok(call, 1, t)

    for address, subject, direction in ((ALICE, "Call to Bob Brown", "Outgoing"),
                                        (BOB, "Call from Alice Anderson", "Incoming")):
        [log] = wait_transcripts(t, ews, address, 30)
        assert (log.item_class, log.subject) == (CALL_LOG, subject), (log.item_class, log.subject)
        body = str(log.body)
        in_order(body, "Caller: Alice Anderson", "Callee: Bob Brown", f"Direction: {direction}", "Start:", "Duration: 0:00:0")
        assert log.author.email_address == ALICE and [r.email_address for r in log.to_recipients] == [BOB]
    for folder in ("inbox", "conversation_history"):
        missed = wait_transcripts(t, ews, CAROL, 30, count=2, folder=folder)
        assert {(m.item_class, m.subject) for m in missed} == {(MISSED_CALL, "Missed call from Alice Anderson")}
        reasons = sorted(str(m.body).split("Missed: ")[1].split("<")[0] for m in missed)
        assert reasons == ["cancelled", "unavailable"], reasons
    assert transcripts(ews, ALICE, "inbox") == [], "the caller gets no missed-call item"
    cfg = wait_state(t, lambda c: c["PendingItems"] == 0)
    assert cfg["PendingItems"] == 0, cfg


@pytest.mark.timeout(120)
def test_a_client_policy_without_im_archiving_keeps_that_users_mailbox_out(make_tandem, peers):
    t, ews = deploy(make_tandem, "history-policy", idle=3)
    ok(t.run("cs", "set-client-policy", "--identity", f"sip:bob@{DOMAIN}", "--enable-im-auto-archiving", "false",
             *t.location))
    policy = json.loads(ok(t.run("cs", "get-client-policy", "--identity", f"sip:bob@{DOMAIN}", "--json",
                                 *t.location)).stdout)
    assert [(p["EnableIMAutoArchiving"], p["EnableCallLogAutoArchiving"]) for p in policy] == [(False, None)], policy
    chat = Chat(t, peers, to_alice=1, to_bob=1)
    chat.say("alice", "bob", "Only Alice keeps this")
    chat.say("bob", "alice", "Right")
    chat.delivered()
    [item] = wait_transcripts(t, ews, ALICE, 30)
    assert item.subject == "Only Alice keeps this"
    cfg = wait_state(t, lambda c: c["PendingItems"] == 0)
    assert cfg["PendingItems"] == 0, cfg
    assert transcripts(ews, BOB) == [], "Bob's policy (EnableIMAutoArchiving false) keeps his mailbox out"


@pytest.mark.timeout(120)
def test_with_archiving_on_transcripts_are_also_copied_to_purges(make_tandem, peers):
    t, ews = deploy(make_tandem, "history-archive", idle=3)
    off = json.loads(ok(t.run("cs", "get-archiving-configuration", "--json", *t.location)).stdout)
    assert (off["EnableArchiving"], off["EnableExchangeArchiving"], off["ArchivesImNow"]) == ("None", False, False)
    ok(t.run("cs", "set-archiving-configuration", "--enable-archiving", "ImOnly", "--enable-exchange-archiving",
             "true", *t.location))
    ok(t.run("cs", "set-archiving-policy", "--archive-internal", "true", *t.location))
    on = json.loads(ok(t.run("cs", "get-archiving-configuration", "--json", *t.location)).stdout)
    assert on["ArchivesImNow"] is True, on
    policy = json.loads(ok(t.run("cs", "get-archiving-policy", "--json", *t.location)).stdout)
    assert (policy["ArchiveInternal"], policy["ArchiveExternal"]) == (True, False), policy
    for bad, needle in [(["set-archiving-configuration", "--enable-archiving", "Everything"], "--enable-archiving"),
                        (["set-archiving-policy", "--identity", "tag:Sales", "--archive-internal", "true"],
                         "no such policy")]:
        r = t.run("cs", *bad, *t.location)
        assert r.returncode == 2 and needle in r.stderr, f"{bad}: {r.returncode} {r.stderr}"
    time.sleep(1.5)  # the running Front End reads the settings every second
    chat = Chat(t, peers, to_alice=0, to_bob=1)
    chat.say("alice", "bob", "Kept for compliance")
    chat.delivered()
    for address in (ALICE, BOB):
        [visible] = wait_transcripts(t, ews, address, 30)
        assert visible.subject == "Kept for compliance"
    # The archived copies are in each user's Purges, which eDiscovery searches and the user
    # cannot open (ErrorAccessDenied; exchangelib falls back to FindItem, refused the same way).
    deadline = time.monotonic() + 30
    while True:
        found = json.loads(ok(t.run("ediscovery", "search", "--query", "compliance", "--json", *t.location)).stdout)
        archived = sorted((r["Mailbox"], r["Folder"], r["ItemClass"], r["Subject"]) for r in found["Results"]
                          if r["Folder"] == "recoverableitemspurges")
        if len(archived) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert archived == [(u, "recoverableitemspurges", CLASS, "Kept for compliance") for u in ("alice", "bob")], found
    from exchangelib.errors import ErrorAccessDenied
    for address in (ALICE, BOB):
        with pytest.raises(ErrorAccessDenied):
            account(ews, address).recoverable_items_purges


@pytest.mark.timeout(120)
def test_a_granted_archiving_policy_archives_only_that_users_copy(make_tandem, peers):
    """New-CsArchivingPolicy / Grant-CsArchivingPolicy: with archiving on and the global policy
    archiving nothing, a tag policy with ArchiveInternal granted to Bob archives his copy of the
    transcript in Purges (found by eDiscovery) and not Alice's."""
    t, ews = deploy(make_tandem, "history-archive-tag", idle=3)
    L = t.location
    ok(t.run("cs", "set-archiving-configuration", "--enable-archiving", "ImOnly", "--enable-exchange-archiving",
             "true", *L))
    ok(t.run("cs", "new-archiving-policy", "--identity", "tag:Legal", "--archive-internal", "true", *L))
    ok(t.run("cs", "grant-archiving-policy", "--identity", f"sip:{BOB}", "--policy-name", "Legal", *L))
    listed = json.loads(ok(t.run("cs", "get-archiving-policy", "--identity", "all", "--json", *L)).stdout)
    assert [(p["Identity"], p["ArchiveInternal"]) for p in listed] == [("Global", False), ("tag:legal", True)], listed
    one = json.loads(ok(t.run("cs", "get-archiving-policy", "--identity", "tag:legal", "--json", *L)).stdout)
    assert (one["ArchiveInternal"], one["ArchiveExternal"]) == (True, False), one
    for bad, needle in [(["new-archiving-policy", "--identity", "tag:Legal"], "exists"),
                        (["new-archiving-policy", "--identity", "tag:no/slash"], "policy name"),
                        (["grant-archiving-policy", "--identity", f"sip:{BOB}", "--policy-name", "Nope"], "no such policy"),
                        (["grant-archiving-policy", "--identity", f"sip:nobody@{DOMAIN}", "--policy-name", "Legal"],
                         "no such user"),
                        (["get-archiving-policy", "--identity", "tag:nope"], "no such policy")]:
        r = t.run("cs", *bad, *L)
        assert r.returncode == 2 and needle in r.stderr, f"{bad}: {r.returncode} {r.stderr}"
    time.sleep(1.5)  # the running Front End reads the settings every second
    chat = Chat(t, peers, to_alice=0, to_bob=1)
    chat.say("alice", "bob", "Legal hold memo")
    chat.delivered()
    for address in (ALICE, BOB):
        [visible] = wait_transcripts(t, ews, address, 30)
        assert visible.subject == "Legal hold memo"
    cfg = wait_state(t, lambda c: c["PendingItems"] == 0, budget=30)
    assert cfg["PendingItems"] == 0, cfg
    found = json.loads(ok(t.run("ediscovery", "search", "--query", "memo", "--json", *L)).stdout)
    assert sorted((r["Mailbox"], r["Folder"]) for r in found["Results"]) == [
        ("alice", "conversationhistory"), ("bob", "conversationhistory"), ("bob", "recoverableitemspurges")], found

    # Back to the global policy.
    out = ok(t.run("cs", "grant-archiving-policy", "--identity", f"sip:{BOB}", "--policy-name", "global", *L)).stdout
    assert "Global" in out, out


def test_the_configuration_command_refuses_bad_input(make_tandem):
    t = make_tandem("history-config")
    t.start()
    for args, needle in [
        (["--idle-timeout", "0"], "--idle-timeout 0"),
        (["--idle-timeout", "86401"], "--idle-timeout 86401"),
        (["--max-continued-conversation-retry=-1"], "--max-continued-conversation-retry -1"),
        (["--max-continued-conversation-retry", "101"], "--max-continued-conversation-retry 101"),
        (["--identity", "site:Redmond", "--idle-timeout", "5"], "only global"),
        ([], "nothing to set"),
    ]:
        r = t.run("cs", "set-conversation-history-configuration", *args, *t.location)
        assert r.returncode == 2, f"{args}: exit {r.returncode}\n{r.stdout}{r.stderr}"
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and needle in lines[0], f"{args}: {r.stderr}"
    assert state(t)["IdleTimeout"] == 600, "the default (frontend.conversation_idle_timeout) is unchanged"
    ok(t.run("cs", "set-conversation-history-configuration", "--enable-server-conversation-history", "false",
             "--max-continued-conversation-retry", "5", *t.location))
    cfg = state(t)
    assert (cfg["EnableServerConversationHistory"], cfg["MaxContinuedConversationRetry"]) == (False, 5), cfg
