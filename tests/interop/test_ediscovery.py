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
from test_conversation_history import ALICE, BOB, CLASS, Chat, deploy, ok, peers, transcripts, wait_transcripts

__all__ = ["peers"]


def search(t, *args) -> dict:
    return json.loads(ok(t.run("ediscovery", "search", *args, "--json", *t.location)).stdout)


def test_a_deleted_transcript_is_still_found_by_ediscovery_in_purges(make_tandem, peers, tmp_path):
    t, ews = deploy(make_tandem, "ediscovery", idle=3)
    ok(t.run("cs", "set-archiving-configuration", "--enable-archiving", "ImOnly", "--enable-exchange-archiving",
             "true", *t.location))
    ok(t.run("cs", "set-archiving-policy", "--archive-internal", "true", *t.location))
    time.sleep(1.5)  # the running Front End reads the settings every second
    chat = Chat(t, peers, to_alice=0, to_bob=1)
    chat.say("alice", "bob", "The zebra plan is final")
    chat.delivered()
    for address in (ALICE, BOB):
        wait_transcripts(t, ews, address, 30, folder="recoverable_items_purges")
    [visible] = wait_transcripts(t, ews, BOB, 30)

    # Bob deletes the transcript for good; his Conversation History no longer has it.
    visible.delete()
    assert transcripts(ews, BOB) == []

    found = search(t, "--query", "zebra")
    counts = {m["Mailbox"]: m["ResultItemsCount"] for m in found["Mailboxes"]}
    assert counts == {"alice": 2, "bob": 1}, found
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
    # Another user's folder does not answer for alice's words.
    assert list(account(ews, BOB).inbox.filter("quokka")) == []

    for bad in ["subject:\"open", "colour:red", "(a", "a OR", "received:yesterday", "x " * 40]:
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

    # Bob is on hold: both deletions are kept in Purges; Alice is not: her hard delete is gone.
    held = search(t, "--query", "walrus")
    assert sorted((r["Folder"], r["Subject"]) for r in held["Results"]) == [
        ("recoverableitemspurges", "walrus hard"), ("recoverableitemspurges", "walrus soft")], held
    free = search(t, "--query", "narwhal")
    assert [(r["Folder"], r["Subject"]) for r in free["Results"]] == [
        ("recoverableitemsdeletions", "narwhal soft")], free
    # Bob cannot delete what the hold keeps.
    kept = list(bob.recoverable_items_purges.all())
    assert len(kept) == 2
    with pytest.raises(ErrorAccessDenied):
        kept[0].delete()
    assert len(search(t, "--query", "walrus")["Results"]) == 2
