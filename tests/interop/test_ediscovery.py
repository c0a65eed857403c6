"""Search (issue 13, deliverable 5): the mailbox store's full-text index behind EWS FindItem
QueryString and the administrator's `tandem ediscovery` commands.

- With archiving on, a user deletes the transcript from Conversation History with exchangelib;
  `tandem ediscovery search` still finds it in Recoverable Items\\Purges (hit counts per mailbox,
  then the items), `export` writes it as .eml and mbox, and `audit` shows who searched what.
- exchangelib's `folder.filter("…")` (a QueryString) finds the one message with a word among
  two thousand; fields, phrases, OR and received ranges narrow it; bad queries answer an EWS
  error and the server goes on serving.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_ediscovery.py -q
"""

from __future__ import annotations

import datetime
import json
import mailbox
import time

import pytest

from test_calendar_presence import account
from test_conversation_history import ALICE, BOB, CAROL, CLASS, Chat, deploy, ok, peers, transcripts, wait_transcripts

__all__ = ["peers"]


def search(t, *args) -> dict:
    return json.loads(ok(t.run("ediscovery", "search", *args, "--json", *t.location)).stdout)


def counts(found: dict) -> dict:
    return {m["Mailbox"]: m["ResultItemsCount"] for m in found["Mailboxes"]}


def wait_search(t, query: str, want: dict, budget: float = 30) -> dict:
    """`tandem ediscovery search --query QUERY` until its counts per mailbox are WANT."""
    deadline = time.monotonic() + budget
    while True:
        found = search(t, "--query", query)
        if counts(found) == want or time.monotonic() > deadline:
            assert counts(found) == want, found
            return found
        time.sleep(0.5)


def test_a_deleted_transcript_is_still_found_by_ediscovery_in_purges(make_tandem, peers, tmp_path):
    t, ews = deploy(make_tandem, "ediscovery", idle=3)
    ok(t.run("cs", "set-archiving-configuration", "--enable-archiving", "ImOnly", "--enable-exchange-archiving",
             "true", *t.location))
    ok(t.run("cs", "set-archiving-policy", "--archive-internal", "true", *t.location))
    time.sleep(1.5)  # the running Front End reads the settings every second
    chat = Chat(t, peers, to_alice=0, to_bob=1)
    chat.say("alice", "bob", "The zebra plan is final")
    chat.delivered()
    # Each user's transcript, and its archived copy in Purges (which only eDiscovery sees).
    wait_search(t, "zebra", {"alice": 2, "bob": 2})
    [visible] = wait_transcripts(t, ews, BOB, 30)

    # Bob deletes the transcript for good; his Conversation History no longer has it.
    visible.delete()
    assert transcripts(ews, BOB) == []

    found = search(t, "--query", "zebra")
    assert counts(found) == {"alice": 2, "bob": 1}, found
    bobs = [r for r in found["Results"] if r["Mailbox"] == "bob"]
    assert [(r["Folder"], r["ItemClass"], r["Subject"]) for r in bobs] == [
        ("recoverableitemspurges", CLASS, "The zebra plan is final")], found
    # Narrowed to a mailbox, to a field, to dates; a word nobody wrote finds nothing.
    only_bob = search(t, "--query", "zebra", "--mailbox", "bob")
    assert [m["Mailbox"] for m in only_bob["Mailboxes"]] == ["bob"]
    assert len(search(t, "--query", "subject:\"zebra plan\"")["Results"]) == 3
    assert search(t, "--query", "subject:\"plan zebra\"")["Results"] == []
    today = datetime.datetime.now(datetime.timezone.utc).date()
    assert len(search(t, "--query", f"zebra received:{today}", "--mailbox", "bob")["Results"]) == 1
    assert search(t, "--query", "zebra", "--end-date", "2000-01-01")["Results"] == []
    assert search(t, "--query", "okapi")["Mailboxes"] == []
    text = ok(t.run("ediscovery", "search", "--query", "zebra", *t.location)).stdout
    assert "recoverableitemspurges" in text and "total" in text, text

    # Export: one .eml per hit (with its text), or one mbox per mailbox.
    eml = tmp_path / "eml"
    out = ok(t.run("ediscovery", "export", "--query", "zebra", "--format", "eml", "--output", str(eml), *t.location))
    assert "exported 3 items" in out.stdout and "exported 3 of 3" in out.stderr, out
    files = sorted(eml.rglob("*.eml"))
    assert len(files) == 3 and all(b"zebra" in f.read_bytes() for f in files), files
    assert sorted(p.name for p in eml.iterdir()) == ["alice", "bob"]
    mb = tmp_path / "mbox"
    ok(t.run("ediscovery", "export", "--query", "zebra", "--format", "mbox", "--output", str(mb), *t.location))
    box = mailbox.mbox(str(mb / "bob.mbox"))
    assert [m["Subject"] for m in box] == ["The zebra plan is final"]

    # Bad queries are refused with the reason (exit 2), and every search and export is audited.
    for bad, needle in [("subject:\"open", "not closed"), ("colour:red", "unknown property"), ("", "empty"),
                        ("a OR", "OR needs a term")]:
        r = t.run("ediscovery", "search", "--query", bad, *t.location)
        assert r.returncode == 2 and needle in r.stderr, f"{bad!r}: {r.returncode} {r.stderr}"
    log = json.loads(ok(t.run("ediscovery", "audit", "--json", *t.location)).stdout)
    assert [e["Action"] for e in log].count("export") == 2, log
    assert {e["Query"] for e in log} >= {"zebra", "okapi", "subject:\"zebra plan\""}, log
    assert all(e["Actor"] for e in log)
    assert next(e for e in log if e["Query"] == "zebra" and e["Scope"] == "bob")["Hits"] == 1, log


def test_find_item_query_string_finds_one_message_among_thousands(make_tandem):
    from exchangelib import Message
    from exchangelib.errors import ErrorInvalidRequest

    t, ews = deploy(make_tandem, "querystring", idle=600)
    alice = account(ews, ALICE)
    n = 2000
    started = time.monotonic()
    items = [Message(account=alice, folder=alice.inbox, subject=f"Weekly report {i}",
                     body=f"Numbers for week {i} look steady") for i in range(n)]
    items[1234] = Message(account=alice, folder=alice.inbox, subject="Weekly report 1234",
                          body="Numbers look steady but the quokka budget doubled")
    for chunk in range(0, n, 250):
        created = alice.bulk_create(folder=alice.inbox, items=items[chunk:chunk + 250])
        assert all(not isinstance(c, Exception) for c in created), created[:3]
    print(f"created {n} items in {time.monotonic() - started:.1f} s")
    assert alice.inbox.all().count() == n

    started = time.monotonic()
    [hit] = list(alice.inbox.filter("quokka"))
    took = time.monotonic() - started
    assert (hit.subject, "quokka" in str(hit.body)) == ("Weekly report 1234", True)
    print(f"QueryString over {n} items: {took * 1000:.0f} ms")
    assert [m.subject for m in alice.inbox.filter("\"quokka budget\"")] == ["Weekly report 1234"]
    assert list(alice.inbox.filter("\"budget quokka\"")) == []
    assert list(alice.inbox.filter("subject:quokka")) == []
    assert [m.subject for m in alice.inbox.filter("subject:1234 AND body:doubled")] == ["Weekly report 1234"]
    assert sorted(m.subject for m in alice.inbox.filter("quokka OR subject:7")) == [
        "Weekly report 1234", "Weekly report 7"]
    assert alice.inbox.filter("steady").count() == n
    today = datetime.datetime.now(datetime.timezone.utc).date()
    assert alice.inbox.filter(f"quokka received:{today}").count() == 1
    assert alice.inbox.filter("quokka received:<2000-01-01").count() == 0
    # Prefixes and NOT.
    assert [m.subject for m in alice.inbox.filter("quok*")] == ["Weekly report 1234"]
    assert alice.inbox.filter("steady NOT quokka").count() == n - 1
    assert [m.subject for m in alice.inbox.filter("subject:1234 NOT doubled")] == []
    # received: inside OR (each alternative answered from the index, the union counted once).
    assert [m.subject for m in alice.inbox.filter("quokka OR received:<2000-01-01")] == ["Weekly report 1234"]
    assert alice.inbox.filter(f"quokka OR received:{today}").count() == n
    assert [m.subject for m in alice.inbox.filter("(steady received:<2000-01-01) OR subject:7")] == ["Weekly report 7"]
    # Another user's folder does not answer for alice's words.
    assert list(account(ews, BOB).inbox.filter("quokka")) == []

    too_many = " ".join(f"(w{i} OR received:2026-12-01)" for i in range(1, 5))  # 16 alternatives
    for bad in ["subject:\"open", "colour:red", "(a", "a OR", "received:yesterday", "x " * 40, too_many,
                "qu*", "NOT quokka", "quokka NOT received:2026-12-01"]:
        with pytest.raises(ErrorInvalidRequest):
            list(alice.inbox.filter(bad))
    assert alice.inbox.filter("quokka").count() == 1, "the server goes on serving after bad queries"


def test_under_litigation_hold_a_deleted_item_is_kept_for_ediscovery(make_tandem):
    from exchangelib import Message
    from exchangelib.errors import ErrorAccessDenied

    t, ews = deploy(make_tandem, "holds", idle=600)
    before = json.loads(ok(t.run("exchange", "get-mailbox", "--identity", "bob", "--json", *t.location)).stdout)
    assert (before["LitigationHoldEnabled"], before["RetainDeletedItemsFor"]) == (False, 14), before
    ok(t.run("exchange", "set-mailbox", "--identity", "bob", "--litigation-hold-enabled", "true",
             "--retain-deleted-items-for", "30", *t.location))
    after = json.loads(ok(t.run("exchange", "get-mailbox", "--identity", "bob", "--json", *t.location)).stdout)
    assert (after["LitigationHoldEnabled"], after["RetainDeletedItemsFor"]) == (True, 30), after
    for bad, needle in [(["--identity", "bob"], "nothing to set"),
                        (["--identity", "bob", "--retain-deleted-items-for", "99999"], "at most"),
                        (["--identity", "nobody", "--litigation-hold-enabled", "true"], "nobody")]:
        r = t.run("exchange", "set-mailbox", *bad, *t.location)
        assert r.returncode != 0 and needle in r.stderr, f"{bad}: {r.returncode} {r.stderr}"

    bob, alice = account(ews, BOB), account(ews, ALICE)
    for acc, word in ((bob, "walrus"), (alice, "narwhal")):
        for how in ("hard", "soft"):
            m = Message(account=acc, folder=acc.inbox, subject=f"{word} {how}", body=f"the {word} memo")
            m.save()
            [m] = list(acc.inbox.filter(subject=f"{word} {how}"))
            m.delete() if how == "hard" else m.soft_delete()
            assert list(acc.inbox.filter(word)) == []

    # A soft delete goes to Recoverable Items\Deletions, where its user still sees it; a hard
    # delete is gone, except under hold (Bob), where Purges keeps it.
    def where(word):
        return sorted((r["Folder"], r["Subject"]) for r in search(t, "--query", word)["Results"])

    assert where("walrus") == [("recoverableitemsdeletions", "walrus soft"),
                               ("recoverableitemspurges", "walrus hard")]
    assert where("narwhal") == [("recoverableitemsdeletions", "narwhal soft")]
    kept_ids = {}
    for acc, word in ((bob, "walrus"), (alice, "narwhal")):
        [soft] = list(acc.recoverable_items_deletions.all())
        assert soft.subject == f"{word} soft"
        kept_ids[word] = (soft.id, soft.changekey)
        soft.delete()  # emptying Deletions: under hold it goes to Purges, else it is gone
        assert list(acc.recoverable_items_deletions.all()) == []
    assert where("walrus") == [("recoverableitemspurges", "walrus hard"), ("recoverableitemspurges", "walrus soft")]
    assert where("narwhal") == []

    # Purges is hidden from Bob: not in his folder tree, not open by name, and what the hold
    # keeps there cannot be reached by its id to delete it.
    names = {f.name for f in account(ews, BOB).root.walk()}
    assert {"Recoverable Items", "Deletions"} <= names and "Purges" not in names, names
    with pytest.raises(ErrorAccessDenied):
        account(ews, BOB).recoverable_items_purges
    with pytest.raises(ErrorAccessDenied):
        bob.bulk_delete(ids=[kept_ids["walrus"]])
    assert len(search(t, "--query", "walrus")["Results"]) == 2


def test_retention_purges_recoverable_items_unless_the_mailbox_is_on_hold(make_tandem):
    """Set-Mailbox -RetainDeletedItemsFor: the Mailbox's retention sweep (every second here,
    `mailbox.retention_sweep_seconds`) removes what Recoverable Items kept longer than that,
    unless the mailbox is on litigation hold; lifting the hold lets the next sweep purge."""
    from exchangelib import Message

    t, ews = deploy(make_tandem, "retention", idle=600, mailbox_extra="retention_sweep_seconds = 1")
    ok(t.run("exchange", "set-mailbox", "--identity", "alice", "--retain-deleted-items-for", "0", *t.location))
    ok(t.run("exchange", "set-mailbox", "--identity", "bob", "--litigation-hold-enabled", "true",
             "--retain-deleted-items-for", "0", *t.location))
    accounts = {"alice": account(ews, ALICE), "bob": account(ews, BOB), "carol": account(ews, CAROL)}
    for name, acc in accounts.items():
        for how in ("soft", "hard"):
            m = Message(account=acc, folder=acc.inbox, subject=f"{name} {how} gannet", body="the gannet memo")
            m.save()
            [m] = list(acc.inbox.filter(subject=f"{name} {how} gannet"))
            m.delete() if how == "hard" else m.soft_delete()

    # Alice (0 days, no hold): her soft delete goes at the next sweep. Bob (0 days, on hold):
    # both of his are kept. Carol (14 days by default): her soft delete stays in Deletions.
    wait_search(t, "gannet", {"bob": 2, "carol": 1})
    time.sleep(3)  # a few more sweeps change nothing
    assert counts(search(t, "--query", "gannet")) == {"bob": 2, "carol": 1}
    assert list(accounts["alice"].recoverable_items_deletions.all()) == []
    assert [m.subject for m in accounts["carol"].recoverable_items_deletions.all()] == ["carol soft gannet"]
    assert [m.subject for m in accounts["bob"].recoverable_items_deletions.all()] == ["bob soft gannet"]

    # The hold lifted, what Bob kept is past his retention and the next sweep purges it.
    ok(t.run("exchange", "set-mailbox", "--identity", "bob", "--litigation-hold-enabled", "false", *t.location))
    wait_search(t, "gannet", {"carol": 1})
    assert list(accounts["bob"].recoverable_items_deletions.all()) == []


def test_ex_storage_connectivity_dumpster_writes_and_removes_a_test_item(make_tandem):
    """Test-CsExStorageConnectivity -Folder Dumpster: `tandem test ex-storage-connectivity --folder
    Dumpster` writes a test item into Recoverable Items\\Deletions through the Front End's chain
    (DNS, Autodiscover, S2S token, EWS), reads it back, removes it and checks it is gone, hop by
    hop; for a mailbox on litigation hold the removed item is kept in Purges (eDiscovery finds it)."""
    t, ews = deploy(make_tandem, "dumpster", idle=600)

    def dumpster(user: str) -> dict:
        r = t.run("test", "ex-storage-connectivity", "--sip-uri", f"sip:{user}", "--folder", "Dumpster", "--json",
                  *t.location)
        out = json.loads(r.stdout)
        assert r.returncode == 0 and out["ok"], out
        assert [h["hop"] for h in out["hops"]] == [
            "DNS", "Autodiscover", "EWS write", "EWS read", "EWS delete", "EWS removed"], out
        assert "in Dumpster" in out["hops"][2]["detail"], out
        return out

    out = dumpster(ALICE)
    assert "ErrorItemNotFound" in out["hops"][-1]["detail"], out
    assert list(account(ews, ALICE).recoverable_items_deletions.all()) == []
    assert search(t, "--query", "Test-CsExStorageConnectivity")["Mailboxes"] == []
    text = ok(t.run("test", "ex-storage-connectivity", "--sip-uri", f"sip:{ALICE}", "--folder", "dumpster",
                    *t.location)).stdout
    assert [line.split()[0] for line in text.splitlines()] == ["PASS"] * 6, text

    ok(t.run("exchange", "set-mailbox", "--identity", "bob", "--litigation-hold-enabled", "true", *t.location))
    out = dumpster(BOB)
    assert "kept in Recoverable Items" in out["hops"][-1]["detail"], out
    assert list(account(ews, BOB).recoverable_items_deletions.all()) == []
    kept = search(t, "--query", "CsExStorageConnectivity")["Results"]
    assert [(r["Mailbox"], r["Folder"]) for r in kept] == [("bob", "recoverableitemspurges")], kept
