"""EWS at /EWS/Exchange.asmx driven by exchangelib (PyPI) over TLS with our CA and Basic auth,
plus raw SOAP for bad input. See shared/reference/real-clients.md §1.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_ews.py -q
"""

from __future__ import annotations

import base64
import datetime
import os
import xml.etree.ElementTree as ET

import pytest
import requests

from conftest import DEMO_PASSWORD, DOMAIN, Tandem

M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
S = "http://schemas.xmlsoap.org/soap/envelope/"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"


@pytest.fixture(scope="module")
def deployment(tandem_bin, tmp_path_factory):
    t = Tandem(tandem_bin, tmp_path_factory.mktemp("ews"))
    t.start()
    st = t.status()
    os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
    yield {"t": t, "ews": st["mailbox"]["ews_url"], "ca": st["ca_certificate"]}
    t.kill_all()
    from exchangelib.protocol import close_connections

    close_connections()


def account(d, address=ALICE, **cfg):
    from exchangelib import BASIC, DELEGATE, Account, Configuration, Credentials, EWSTimeZone

    creds = Credentials(address, DEMO_PASSWORD)
    config = Configuration(service_endpoint=d["ews"], credentials=creds, **({"auth_type": BASIC} | cfg))
    return Account(address, credentials=creds, config=config, autodiscover=False, access_type=DELEGATE,
                   default_timezone=EWSTimeZone("UTC"))


@pytest.fixture(scope="module")
def alice(deployment):
    return account(deployment)


@pytest.fixture(scope="module")
def bob(deployment):
    return account(deployment, BOB)


def soap(d, body, header='<t:RequestServerVersion Version="Exchange2016"/>', auth=True, path=None):
    env = (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}" xmlns:m="{M}" xmlns:t="{T}">'
           f"<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>")
    return requests.post(path or d["ews"], data=env.encode(), headers={"Content-Type": "text/xml; charset=utf-8"},
                         auth=(ALICE, DEMO_PASSWORD) if auth else None, verify=d["ca"], timeout=30)


def response_codes(text):
    return [e.text for e in ET.fromstring(text).iter(f"{{{M}}}ResponseCode")]


# ---------------------------------------------------------------- transport, auth, versions


def test_ews_get_and_case_insensitive_path(deployment):
    url = deployment["ews"]
    r = requests.get(url, verify=deployment["ca"], timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    r = requests.get(url, auth=(ALICE, DEMO_PASSWORD), verify=deployment["ca"], timeout=10)
    assert r.status_code == 200
    lower = url.replace("/EWS/Exchange.asmx", "/ews/exchange.asmx")
    r = soap(deployment, '<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>'
             '<m:FolderIds><t:DistinguishedFolderId Id="root"/></m:FolderIds></m:GetFolder>', path=lower)
    assert r.status_code == 200 and response_codes(r.text) == ["NoError"]
    assert "ServerVersionInfo" in r.text


def test_exchangelib_auth_and_version_probes(deployment):
    """No auth_type and no version: exchangelib probes auth with an unauthenticated ConvertId
    (401 + Basic) and the version with a ConvertId read for ServerVersionInfo."""
    from exchangelib import Account, Configuration, Credentials
    from exchangelib.protocol import close_connections

    close_connections()
    creds = Credentials(ALICE, DEMO_PASSWORD)
    acc = Account(ALICE, credentials=creds, config=Configuration(service_endpoint=deployment["ews"], credentials=creds),
                  autodiscover=False)
    assert acc.protocol.auth_type.lower() == "basic"
    assert acc.version.build.major_version == 15
    assert acc.root.name == "Root"


def test_convert_id_names_the_signed_in_user(deployment, alice):
    root_id = alice.root.id
    body = (f'<m:ConvertId DestinationFormat="EwsId"><m:SourceIds><t:AlternateId Format="EwsId" Id="{root_id}" '
            'Mailbox="blah@blah.com"/></m:SourceIds></m:ConvertId>')
    r = soap(deployment, body)
    alt = next(ET.fromstring(r.text).iter(f"{{{M}}}AlternateId"))
    assert alt.get("Mailbox") == ALICE and alt.get("Id") == root_id
    r = soap(deployment, body.replace(root_id, "DUMMY"))
    assert response_codes(r.text) == ["ErrorInvalidIdMalformed"]


def test_unknown_version_and_impersonation_are_refused(deployment):
    body = ('<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>'
            '<m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>')
    r = soap(deployment, body, header='<t:RequestServerVersion Version="Exchange2099"/>')
    assert r.status_code == 500 and "ErrorInvalidServerVersion" in r.text
    r = soap(deployment, body, header='<t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation>'
             f'<t:ConnectingSID><t:PrimarySmtpAddress>{BOB}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>')
    assert r.status_code == 500 and "ErrorImpersonationDenied" in r.text


# ---------------------------------------------------------------- folders


def test_distinguished_folders_and_tree(alice):
    assert alice.inbox.name == "Inbox"
    assert alice.calendar.name == "Calendar"
    assert alice.contacts.name == "Contacts"
    for f in (alice.sent, alice.drafts, alice.trash, alice.junk, alice.outbox, alice.tasks, alice.conversation_history):
        assert f.id
    names = {f.name for f in alice.root.walk()}
    assert {"Inbox", "Drafts", "Sent Items", "Deleted Items", "Calendar", "Contacts", "Quick Contacts",
            "IM Contacts List", "Conversation History", "Recoverable Items", "Deletions"} <= names
    assert "Purges" not in names, "Recoverable Items\\Purges is hidden from the user"


def test_folder_create_rename_move_delete(alice):
    from exchangelib import Folder
    from exchangelib.errors import ErrorFolderExists

    f = Folder(parent=alice.inbox, name="Projects")
    f.save()
    assert alice.inbox / "Projects"
    with pytest.raises(ErrorFolderExists):
        Folder(parent=alice.inbox, name="Projects").save()
    f.name = "Projects 2026"
    f.save(update_fields=["name"])
    alice.inbox.refresh()
    assert [c.name for c in alice.inbox.children] == ["Projects 2026"]
    sub = Folder(parent=f, name="Sub")
    sub.save()
    sub.move(alice.drafts)
    assert (alice.drafts / "Sub").id == sub.id
    sub.delete()
    f.delete()
    alice.inbox.refresh()
    assert list(alice.inbox.children) == []


def test_distinguished_folders_cannot_be_deleted(deployment, alice):
    r = soap(deployment, '<m:DeleteFolder DeleteType="HardDelete"><m:FolderIds><t:DistinguishedFolderId Id="inbox"/>'
             "</m:FolderIds></m:DeleteFolder>")
    assert response_codes(r.text) == ["ErrorDeleteDistinguishedFolder"]


# ---------------------------------------------------------------- items


def test_message_crud_paging_restrictions_and_sort(alice):
    from exchangelib import HTMLBody, Message

    folder = alice.drafts
    msgs = [Message(folder=folder, subject=f"Report {i:02d}", body=f"body {i}") for i in range(12)]
    for m in msgs:
        m.save()
    assert folder.all().count() == 12
    got = list(alice.fetch(ids=[msgs[3]]))[0]
    assert got.subject == "Report 03" and got.body == "body 3"
    # Paging: exchangelib pages with IndexedPageItemView.
    qs = folder.all().order_by("subject")
    qs.page_size = 5
    assert [m.subject for m in qs] == [f"Report {i:02d}" for i in range(12)]
    assert [m.subject for m in folder.all().order_by("-subject")[:3]] == ["Report 11", "Report 10", "Report 09"]
    assert {m.subject for m in folder.filter(subject__contains="rt 1")} == {"Report 10", "Report 11"}
    assert folder.filter(subject="Report 05").count() == 1
    assert folder.filter(subject__startswith="Report 0").exclude(subject="Report 00").count() == 9
    # Update, then read back.
    got.subject = "Report 03 (edited)"
    got.body = HTMLBody("<p>edited</p>")
    got.save(update_fields=["subject", "body"])
    again = list(alice.fetch(ids=[got]))[0]
    assert again.subject == "Report 03 (edited)" and "edited" in again.body
    # Delete three ways.
    msgs[0].delete()
    msgs[1].move_to_trash()
    msgs[2].soft_delete()
    assert folder.all().count() == 9
    assert alice.trash.filter(subject="Report 01").count() == 1
    for m in folder.all():
        m.delete()
    for m in alice.trash.all():
        m.delete()


def test_move_copy_and_is_read(alice):
    from exchangelib import Message

    m = Message(folder=alice.drafts, subject="movable", body="x")
    m.save()
    m.move(alice.inbox)
    assert alice.inbox.filter(subject="movable").count() == 1
    c = m.copy(alice.drafts)
    assert alice.drafts.filter(subject="movable").count() == 1
    m.is_read = False
    m.save(update_fields=["is_read"])
    alice.inbox.refresh()
    assert alice.inbox.unread_count >= 1
    assert alice.inbox.filter(is_read=False, subject="movable").count() == 1
    m.delete()
    list(alice.fetch(ids=[c]))[0].delete()


def test_send_to_local_recipient(alice, bob):
    from exchangelib import Mailbox, Message

    subject = "Lunch at noon?"
    Message(account=alice, subject=subject, body="See you there", to_recipients=[Mailbox(email_address=BOB)]).send_and_save()
    sent = list(alice.sent.filter(subject=subject))
    assert len(sent) == 1 and sent[0].is_read
    got = list(bob.inbox.filter(subject=subject))
    assert len(got) == 1
    assert got[0].is_read is False
    assert got[0].sender.email_address == ALICE
    assert got[0].body == "See you there"
    # SendOnly keeps no copy.
    Message(account=alice, subject="no copy", body="x", to_recipients=[Mailbox(email_address=BOB)]).send(save_copy=False)
    assert alice.sent.filter(subject="no copy").count() == 0
    assert bob.inbox.filter(subject="no copy").count() == 1
    # A draft sent later (SendItem).
    draft = Message(account=alice, folder=alice.drafts, subject="later", body="x", to_recipients=[Mailbox(email_address=BOB)])
    draft.save()
    draft.send()
    assert bob.inbox.filter(subject="later").count() == 1


def test_send_to_unknown_recipient_writes_nothing(alice):
    from exchangelib import Mailbox, Message
    from exchangelib.errors import ErrorInvalidRecipients

    before = alice.sent.all().count()
    with pytest.raises(ErrorInvalidRecipients):
        Message(account=alice, subject="nowhere", body="x",
                to_recipients=[Mailbox(email_address="someone@elsewhere.example")]).send_and_save()
    assert alice.sent.all().count() == before


def test_calendar_items_and_calendar_view(alice):
    from exchangelib import CalendarItem, EWSDateTime, EWSTimeZone

    tz = EWSTimeZone("UTC")
    start = EWSDateTime(2026, 12, 1, 9, 0, tzinfo=tz)
    item = CalendarItem(folder=alice.calendar, subject="Planning", start=start, end=start + datetime.timedelta(hours=1),
                        location="Room 1", body="agenda")
    item.save()
    view = list(alice.calendar.view(start=start - datetime.timedelta(days=1), end=start + datetime.timedelta(days=1)))
    assert [v.subject for v in view] == ["Planning"]
    assert view[0].location == "Room 1"
    assert list(alice.calendar.view(start=start + datetime.timedelta(days=2), end=start + datetime.timedelta(days=3))) == []
    item.delete()


def test_contacts(alice):
    from exchangelib import Contact
    from exchangelib.indexed_properties import EmailAddress

    c = Contact(folder=alice.contacts, display_name="Dana Dean", given_name="Dana", surname="Dean",
                email_addresses=[EmailAddress(email="dana@example.org", label="EmailAddress1")])
    c.save()
    got = alice.contacts.get(display_name="Dana Dean")
    assert got.given_name == "Dana" and got.surname == "Dean"
    assert got.email_addresses[0].email == "dana@example.org"
    got.delete()


def test_extended_properties_stored_returned_and_restricted(alice):
    from exchangelib import ExtendedProperty, Message

    class Flavour(ExtendedProperty):
        distinguished_property_set_id = "PublicStrings"
        property_name = "Flavour"
        property_type = "String"

    Message.register("flavour", Flavour)
    try:
        for f in ("vanilla", "mint"):
            Message(folder=alice.drafts, subject=f"ice {f}", flavour=f).save()
        got = alice.drafts.get(flavour="mint")
        assert got.subject == "ice mint" and got.flavour == "mint"
        assert [m.flavour for m in alice.drafts.filter(subject__startswith="ice").order_by("flavour")] == ["mint", "vanilla"]
        for m in alice.drafts.filter(subject__startswith="ice"):
            m.delete()
    finally:
        Message.deregister("flavour")


def test_mime_content_round_trip(alice):
    from exchangelib import Message

    raw = b"From: alice@litwareinc.com\r\nTo: bob@litwareinc.com\r\nSubject: =?UTF-8?B?TUlNRSB0ZXN0?=\r\n\r\nHello by MIME\r\n"
    m = Message(folder=alice.drafts, mime_content=raw)
    m.save()
    got = alice.fetch(ids=[m], only_fields=["subject", "mime_content"])
    got = list(got)[0]
    assert got.subject == "MIME test"
    assert got.mime_content == raw
    generated = Message(folder=alice.drafts, subject="typed", body="typed body")
    generated.save()
    mime = list(alice.fetch(ids=[generated], only_fields=["mime_content"]))[0].mime_content
    assert b"Subject: typed" in mime and b"typed body" in mime
    m.delete()
    generated.delete()


def test_querystring_search(alice):
    from exchangelib import Message

    Message(folder=alice.drafts, subject="quarterly numbers", body="revenue up").save()
    Message(folder=alice.drafts, subject="holiday", body="beach").save()
    assert [m.subject for m in alice.drafts.filter("subject:quarterly")] == ["quarterly numbers"]
    assert [m.subject for m in alice.drafts.filter("beach")] == ["holiday"]
    for m in alice.drafts.all():
        m.delete()


def test_resolve_names_and_time_zones(alice):
    assert alice.root.name == "Root"  # settles the protocol's API version before protocol-level calls
    found = alice.protocol.resolve_names(["bob"])
    assert [m.email_address for m in found] == [BOB]
    zones = list(alice.protocol.get_timezones(return_full_timezone_data=True))
    assert zones
    from exchangelib.errors import ErrorNameResolutionNoResults

    with pytest.raises(ErrorNameResolutionNoResults):
        list(alice.protocol.expand_dl("all-staff@litwareinc.com"))


# ---------------------------------------------------------------- bad input


def test_bad_input_gets_ews_errors(deployment, alice):
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaa">]><x>&a;</x>'
    r = requests.post(deployment["ews"], data=bomb, auth=(ALICE, DEMO_PASSWORD), verify=deployment["ca"], timeout=10)
    assert r.status_code == 500 and "ErrorSchemaValidation" in r.text and "Fault" in r.text
    r = requests.post(deployment["ews"], data="<not xml", auth=(ALICE, DEMO_PASSWORD), verify=deployment["ca"], timeout=10)
    assert r.status_code == 500 and "ErrorSchemaValidation" in r.text
    get = ('<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ItemIds>'
           '<t:ItemId Id="{}"/></m:ItemIds></m:GetItem>')
    assert response_codes(soap(deployment, get.format("garbage!")).text) == ["ErrorInvalidIdMalformed"]
    unknown = base64.b64encode(bytes([2]) + bytes(16)).decode()
    assert response_codes(soap(deployment, get.format(unknown)).text) == ["ErrorItemNotFound"]
    folder_as_item = alice.inbox.id
    assert response_codes(soap(deployment, get.format(folder_as_item)).text) == ["ErrorItemNotFound"]
    r = soap(deployment, "<m:GetRoomLists/>")
    assert response_codes(r.text) == ["ErrorInvalidOperation"]
    r = soap(deployment, "<m:NoSuchOperation/>")
    assert r.status_code == 500 and "ErrorInvalidRequest" in r.text
    r = soap(deployment, '<m:GetFolder><m:FolderShape><t:BaseShape>Everything</t:BaseShape></m:FolderShape>'
             '<m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>')
    assert r.status_code == 500 and "ErrorSchemaValidation" in r.text
    r = soap(deployment, f'<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>'
             f'<t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>{BOB}</t:EmailAddress></t:Mailbox>'
             '</t:DistinguishedFolderId></m:FolderIds></m:GetFolder>')
    assert response_codes(r.text) == ["ErrorAccessDenied"]
    r = requests.post(deployment["ews"], data=b"<" * (33 * 1024 * 1024), auth=(ALICE, DEMO_PASSWORD),
                      verify=deployment["ca"], timeout=60)
    assert r.status_code == 413


def test_failed_item_in_a_batch_leaves_the_others(deployment, alice):
    body = ('<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:DistinguishedFolderId Id="drafts"/>'
            '</m:SavedItemFolderId><m:Items><t:Message><t:Subject>batch ok</t:Subject></t:Message>'
            '<t:CalendarItem><t:Subject>bad</t:Subject><t:Start>2026-01-02T10:00:00Z</t:Start><t:End>2026-01-01T10:00:00Z</t:End></t:CalendarItem>'
            "</m:Items></m:CreateItem>")
    r = soap(deployment, body)
    assert response_codes(r.text) == ["NoError", "ErrorInvalidOperation"]
    assert alice.drafts.filter(subject="batch ok").count() == 1
    assert alice.drafts.filter(subject="bad").count() == 0
    for m in alice.drafts.all():
        m.delete()


# ---------------------------------------------------------------- free/busy and out of office


def test_free_busy_merged_and_detailed(alice, bob):
    from exchangelib import CalendarItem, EWSDateTime, EWSTimeZone

    tz = EWSTimeZone("UTC")
    day = EWSDateTime(2026, 12, 7, 0, 0, tzinfo=tz)
    items = [
        CalendarItem(folder=bob.calendar, subject="Design review", start=day.replace(hour=9),
                     end=day.replace(hour=10), location="Room 2", legacy_free_busy_status="Busy"),
        CalendarItem(folder=bob.calendar, subject="Maybe lunch", start=day.replace(hour=12),
                     end=day.replace(hour=13), legacy_free_busy_status="Tentative"),
        CalendarItem(folder=bob.calendar, subject="Holiday", start=day.replace(hour=15),
                     end=day.replace(hour=16), legacy_free_busy_status="OOF"),
    ]
    for i in items:
        i.save()
    try:
        views = list(alice.protocol.get_free_busy_info(
            accounts=[(bob, "Required", False), (alice, "Required", False)],
            start=day.replace(hour=8), end=day.replace(hour=17), merged_free_busy_interval=60,
            requested_view="DetailedMerged"))
        b, a = views
        # One digit per hour from 08:00: free, busy, free, free, tentative, free, free, OOF, free.
        assert b.merged == "020010030"
        assert [(e.start.hour, e.busy_type) for e in b.calendar_events] == [(9, "Busy"), (12, "Tentative"), (15, "OOF")]
        # Another user's calendar: times only, no subject (AvailabilityOnly).
        assert all(e.details is None for e in b.calendar_events)
        assert a.merged == "0" * 9
        assert b.working_hours
        own = list(bob.protocol.get_free_busy_info(accounts=[(bob, "Required", False)], start=day.replace(hour=8),
                                                   end=day.replace(hour=17), requested_view="Detailed"))[0]
        assert [e.details.subject for e in own.calendar_events] == ["Design review", "Maybe lunch", "Holiday"]
    finally:
        for i in items:
            i.delete()


def test_out_of_office_settings(alice):
    from exchangelib import EWSDateTime, EWSTimeZone, OofSettings

    assert alice.oof_settings.state == OofSettings.DISABLED
    tz = EWSTimeZone("UTC")
    alice.oof_settings = OofSettings(state=OofSettings.SCHEDULED, external_audience="Known",
                                     internal_reply="Back Monday", external_reply="Away",
                                     start=EWSDateTime(2026, 12, 20, tzinfo=tz), end=EWSDateTime(2026, 12, 28, tzinfo=tz))
    got = alice.oof_settings
    assert got.state == OofSettings.SCHEDULED and got.internal_reply == "Back Monday"
    assert got.external_audience == "Known" and got.start.day == 20 and got.end.day == 28
    alice.oof_settings = OofSettings(state=OofSettings.DISABLED, internal_reply="", external_reply="")
    assert alice.oof_settings.state == OofSettings.DISABLED


# ---------------------------------------------------------------- sync and notifications


def test_sync_folder_items_and_hierarchy(alice):
    from exchangelib import Folder, Message

    folder = Folder(parent=alice.inbox, name="Sync me")
    folder.save()
    try:
        a = Message(folder=folder, subject="first")
        a.save()
        b = Message(folder=folder, subject="second")
        b.save()
        changes = list(folder.sync_items())
        assert sorted((kind, item.subject) for kind, item in changes) == [("create", "first"), ("create", "second")]
        state = folder.item_sync_state
        assert list(folder.sync_items(sync_state=state)) == []
        a.subject = "first, edited"
        a.save(update_fields=["subject"])
        b.delete()
        c = Message(folder=folder, subject="third")
        c.save()
        changes = list(folder.sync_items(sync_state=state))
        kinds = sorted((kind, getattr(item, "subject", None)) for kind, item in changes)
        assert kinds == [("create", "third"), ("delete", None), ("update", "first, edited")], kinds
        # Hierarchy: the first sync lists the folders; a new subfolder appears as a create.
        first = list(alice.root.sync_hierarchy())
        assert any(kind == "create" and f.name == "Sync me" for kind, f in first)
        state = alice.root.folder_sync_state
        sub = Folder(parent=folder, name="Child")
        sub.save()
        later = list(alice.root.sync_hierarchy(sync_state=state))
        assert [(kind, f.name) for kind, f in later] == [("create", "Child")]
    finally:
        folder.delete()


def test_sync_reports_read_flag_changes(alice):
    """A change of only the read flag comes back as a ReadFlagChange (not an Update), as on
    Exchange; a later change of anything else makes it an Update again."""
    from exchangelib import Folder, Message

    folder = Folder(parent=alice.inbox, name="Read flags")
    folder.save()
    try:
        m = Message(folder=folder, subject="flag me", is_read=True)
        m.save()
        list(folder.sync_items())
        state = folder.item_sync_state
        m.is_read = False
        m.save(update_fields=["is_read"])
        changes = list(folder.sync_items(sync_state=state))
        assert [(kind, value[0].id, value[1]) for kind, value in changes] == [("read_flag_change", m.id, False)], changes
        m.subject = "flag me, edited"
        m.save(update_fields=["subject"])
        changes = list(folder.sync_items(sync_state=state))
        assert [(kind, item.subject) for kind, item in changes] == [("update", "flag me, edited")], changes
    finally:
        folder.delete()


def test_pull_subscription_get_events(alice, bob):
    from exchangelib import Mailbox, Message

    with alice.inbox.pull_subscription(event_types=("NewMailEvent", "CreatedEvent", "DeletedEvent")) as (sub_id, watermark):
        notifications = list(alice.inbox.get_events(sub_id, watermark))
        assert [type(e).__name__ for n in notifications for e in n.events] == ["StatusEvent"]
        Message(account=bob, subject="ping", body="x", to_recipients=[Mailbox(email_address=ALICE)]).send()
        notifications = list(alice.inbox.get_events(sub_id, watermark))
        names = [type(e).__name__ for n in notifications for e in n.events]
        assert "NewMailEvent" in names and "CreatedEvent" in names, names
        new_mail = next(e for n in notifications for e in n.events if type(e).__name__ == "NewMailEvent")
        got = list(alice.fetch(ids=[new_mail.item_id]))[0]
        assert got.subject == "ping"


# ---------------------------------------------------------------- attachments


def test_file_attachments(alice, bob):
    from exchangelib import FileAttachment, Mailbox, Message

    m = Message(folder=alice.drafts, subject="with files", body="see attached")
    m.attach(FileAttachment(name="a.txt", content=b"alpha", content_type="text/plain"))
    m.save()
    late = FileAttachment(name="b.bin", content=bytes(range(256)))
    m.attach(late)  # on a saved item: CreateAttachment
    got = list(alice.fetch(ids=[m]))[0]
    assert got.has_attachments
    assert sorted(a.name for a in got.attachments) == ["a.txt", "b.bin"]
    contents = {a.name: a.content for a in got.attachments}
    assert contents == {"a.txt": b"alpha", "b.bin": bytes(range(256))}
    mime = list(alice.fetch(ids=[m], only_fields=["mime_content"]))[0].mime_content
    assert b"multipart/mixed" in mime and b'filename="a.txt"' in mime
    m.detach(late)  # DeleteAttachment
    got = list(alice.fetch(ids=[m]))[0]
    assert [a.name for a in got.attachments] == ["a.txt"]
    # Sending carries the attachments to the recipient.
    s = Message(account=alice, subject="report attached", body="x", to_recipients=[Mailbox(email_address=BOB)])
    s.attach(FileAttachment(name="report.csv", content=b"a,b\n1,2\n"))
    s.send_and_save()
    received = bob.inbox.get(subject="report attached")
    assert [(a.name, a.content) for a in received.attachments] == [("report.csv", b"a,b\n1,2\n")]
    m.delete()


def test_item_attachments(deployment, alice, bob):
    """An item attached to an item (exchangelib's ItemAttachment): in CreateItem and by
    CreateAttachment, listed on the parent, read back with GetAttachment (the embedded item, its
    own file attachment, MimeContent), in the parent's MIME as message/rfc822, carried by CopyItem
    and by sending, removed by DeleteAttachment; nesting is bounded."""
    from exchangelib import CalendarItem, FileAttachment, ItemAttachment, Mailbox, Message

    inner = Message(subject="the inner message", body="inner body", to_recipients=[Mailbox(email_address=BOB)])
    inner.attach(FileAttachment(name="deep.txt", content=b"deep"))
    m = Message(folder=alice.drafts, subject="with an attached message", body="outer")
    m.attach(ItemAttachment(name="inner.msg", item=inner))
    m.save()
    got = alice.drafts.get(id=m.id)
    assert got.has_attachments
    [att] = got.attachments
    assert isinstance(att, ItemAttachment) and att.name == "inner.msg"
    read = att.item  # GetAttachment with IncludeMimeContent and the item fields
    assert isinstance(read, Message)
    assert read.subject == "the inner message" and "inner body" in read.body
    assert [r.email_address for r in read.to_recipients] == [BOB]
    assert b"the inner message" in read.mime_content
    assert [(a.name, a.content) for a in read.attachments] == [("deep.txt", b"deep")]
    # On a saved item: CreateAttachment; a calendar item attached this time.
    appt = CalendarItem(subject="attached meeting", start=datetime.datetime(2026, 12, 3, 10, tzinfo=datetime.timezone.utc),
                        end=datetime.datetime(2026, 12, 3, 11, tzinfo=datetime.timezone.utc))
    late = ItemAttachment(name="meeting", item=appt)
    m.attach(late)
    got = alice.drafts.get(id=m.id)
    assert sorted(a.name for a in got.attachments) == ["inner.msg", "meeting"]
    cal = next(a for a in got.attachments if a.name == "meeting").item
    assert isinstance(cal, CalendarItem) and cal.subject == "attached meeting"
    assert cal.start == appt.start and cal.end == appt.end
    mime = list(alice.fetch(ids=[m], only_fields=["mime_content"]))[0].mime_content
    assert b"message/rfc822" in mime and b"Subject: the inner message" in mime
    # CopyItem carries every level.
    m.copy(to_folder=alice.inbox)
    copy = alice.inbox.get(subject="with an attached message")
    assert sorted(a.name for a in copy.attachments) == ["inner.msg", "meeting"]
    inner_copy = next(a for a in copy.attachments if a.name == "inner.msg")
    assert inner_copy.attachment_id.id != att.attachment_id.id
    assert [a.name for a in inner_copy.item.attachments] == ["deep.txt"]
    copy.delete()
    # DeleteAttachment removes an item attachment (and what its item held).
    m.detach(late)
    got = alice.drafts.get(id=m.id)
    assert [a.name for a in got.attachments] == ["inner.msg"]
    # Sending delivers the attached item too.
    s = Message(account=alice, subject="forwarding an item", body="x", to_recipients=[Mailbox(email_address=BOB)])
    s.attach(ItemAttachment(name="fwd", item=Message(subject="forwarded inner", body="fi")))
    s.send_and_save()
    received = bob.inbox.get(subject="forwarding an item")
    assert [a.item.subject for a in received.attachments] == ["forwarded inner"]
    m.delete()

    # Raw SOAP: nesting past the limit is refused with Exchange's code, nothing written.
    def nest(levels):
        x = "<t:Message><t:Subject>core</t:Subject></t:Message>"
        for n in range(levels):
            x = f"<t:Message><t:Subject>level {n}</t:Subject><t:Attachments><t:ItemAttachment><t:Name>n{n}</t:Name>{x}</t:ItemAttachment></t:Attachments></t:Message>"
        return x
    body = ('<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:DistinguishedFolderId Id="drafts"/>'
            '</m:SavedItemFolderId><m:Items>{}</m:Items></m:CreateItem>')
    assert response_codes(soap(deployment, body.format(nest(5))).text) == ["NoError"]
    r = soap(deployment, body.format(nest(6)))
    assert response_codes(r.text) == ["ErrorAttachmentNestLevelLimitExceeded"]
    r = soap(deployment, '<m:GetAttachment><m:AttachmentIds><t:AttachmentId Id="AAAA"/></m:AttachmentIds></m:GetAttachment>')
    assert response_codes(r.text) == ["ErrorInvalidIdMalformed"]


def test_streaming_subscription(alice, bob):
    import threading

    from exchangelib import Mailbox, Message

    with alice.inbox.streaming_subscription(event_types=("NewMailEvent",)) as sub_id:
        def send_later():
            import time

            time.sleep(1.0)
            Message(account=bob, subject="streamed", body="x", to_recipients=[Mailbox(email_address=ALICE)]).send()

        t = threading.Thread(target=send_later)
        t.start()
        events = []
        for notification in alice.inbox.get_streaming_events(sub_id, connection_timeout=1, max_notifications_returned=1):
            events.extend(notification.events)
        t.join()
        names = [type(e).__name__ for e in events]
        assert names == ["NewMailEvent"], names
        assert list(alice.fetch(ids=[events[0].item_id]))[0].subject == "streamed"


def test_two_streaming_subscriptions_on_one_connection(deployment, alice, bob):
    import threading
    import time

    from exchangelib import Mailbox, Message
    from exchangelib.errors import ErrorSubscriptionAccessDenied

    with alice.inbox.streaming_subscription(event_types=("NewMailEvent",)) as inbox_sub, \
            alice.drafts.streaming_subscription(event_types=("CreatedEvent",)) as drafts_sub:
        def write_later():
            time.sleep(1.0)
            Message(account=bob, subject="to the inbox", body="x", to_recipients=[Mailbox(email_address=ALICE)]).send()
            time.sleep(0.5)
            # Alice's own write goes around exchangelib, whose one session for her is streaming.
            soap(deployment, '<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId>'
                 '<t:DistinguishedFolderId Id="drafts"/></m:SavedItemFolderId><m:Items><t:Message>'
                 '<t:Subject>a draft</t:Subject></t:Message></m:Items></m:CreateItem>').raise_for_status()

        t = threading.Thread(target=write_later)
        t.start()
        started = time.monotonic()
        seen = {}
        for notification in alice.inbox.get_streaming_events(
            [inbox_sub, drafts_sub], connection_timeout=1, max_notifications_returned=2
        ):
            seen.setdefault(notification.subscription_id, []).extend(type(e).__name__ for e in notification.events)
        t.join()
        # Both arrive on the one connection, pushed as they commit (not at the 1-minute close).
        assert time.monotonic() - started < 30
        assert seen == {inbox_sub: ["NewMailEvent"], drafts_sub: ["CreatedEvent"]}, seen
        # Another user cannot stream alice's subscriptions.
        with pytest.raises(ErrorSubscriptionAccessDenied):
            list(bob.inbox.get_streaming_events([inbox_sub], connection_timeout=1))


# ---------------------------------------------------------------- delegates


def test_delegates_managed_and_enforced(deployment, alice, bob):
    from exchangelib import CalendarItem, EWSDateTime, EWSTimeZone
    from exchangelib.errors import ErrorAccessDenied

    assert alice.delegates == []
    add = (f'<m:AddDelegate><m:Mailbox><t:EmailAddress>{ALICE}</t:EmailAddress></m:Mailbox><m:DelegateUsers>'
           f'<t:DelegateUser><t:UserId><t:PrimarySmtpAddress>{BOB}</t:PrimarySmtpAddress></t:UserId>'
           '<t:DelegatePermissions><t:CalendarFolderPermissionLevel>Reviewer</t:CalendarFolderPermissionLevel>'
           '</t:DelegatePermissions><t:ReceiveCopiesOfMeetingMessages>false</t:ReceiveCopiesOfMeetingMessages>'
           '<t:ViewPrivateItems>false</t:ViewPrivateItems></t:DelegateUser></m:DelegateUsers>'
           '<m:DeliverMeetingRequests>DelegatesAndMe</m:DeliverMeetingRequests></m:AddDelegate>')
    r = soap(deployment, add)
    assert response_codes(r.text) == ["NoError", "NoError"], r.text
    assert response_codes(soap(deployment, add).text) == ["NoError", "ErrorDelegateAlreadyExists"]
    delegates = alice.delegates
    assert [(d.user_id.primary_smtp_address, d.delegate_permissions.calendar_folder_permission_level) for d in delegates] == [
        (BOB, "Reviewer")]
    tz = EWSTimeZone("UTC")
    start = EWSDateTime(2026, 12, 3, 14, 0, tzinfo=tz)
    item = CalendarItem(folder=alice.calendar, subject="Visible to my delegate", start=start,
                        end=start + datetime.timedelta(hours=1))
    item.save()
    try:
        # Bob opens Alice's calendar as her delegate (exchangelib addresses it by her mailbox).
        from exchangelib import BASIC, DELEGATE, Account, Configuration, Credentials

        creds = Credentials(BOB, DEMO_PASSWORD)
        shared = Account(ALICE, credentials=creds, autodiscover=False, access_type=DELEGATE,
                         config=Configuration(service_endpoint=deployment["ews"], credentials=creds, auth_type=BASIC),
                         default_timezone=tz)
        seen = list(shared.calendar.view(start=start - datetime.timedelta(hours=1), end=start + datetime.timedelta(hours=2)))
        assert [i.subject for i in seen] == ["Visible to my delegate"]
        with pytest.raises(ErrorAccessDenied):
            list(shared.inbox.all())
        remove = (f'<m:RemoveDelegate><m:Mailbox><t:EmailAddress>{ALICE}</t:EmailAddress></m:Mailbox><m:UserIds>'
                  f'<t:UserId><t:PrimarySmtpAddress>{BOB}</t:PrimarySmtpAddress></t:UserId></m:UserIds></m:RemoveDelegate>')
        assert response_codes(soap(deployment, remove).text) == ["NoError", "NoError"]
        with pytest.raises(ErrorAccessDenied):
            list(shared.calendar.all())
        assert alice.delegates == []
    finally:
        item.delete()


def test_paging_from_both_ends(deployment, alice):
    """Pages near the end are read from the far end of the index; every window must still be
    the right slice of the ordered folder."""
    from exchangelib import Folder, Message

    folder = Folder(parent=alice.inbox, name="Paging")
    folder.save()
    try:
        for i in range(30):
            Message(folder=folder, subject=f"p{i:02d}").save()
        expected = [f"p{i:02d}" for i in range(30)]

        def page(offset, size, base="Beginning"):
            body = (f'<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>'
                    f'<t:FieldURI FieldURI="item:Subject"/></t:AdditionalProperties></m:ItemShape>'
                    f'<m:IndexedPageItemView MaxEntriesReturned="{size}" Offset="{offset}" BasePoint="{base}"/>'
                    f'<m:SortOrder><t:FieldOrder Order="Ascending"><t:FieldURI FieldURI="item:Subject"/></t:FieldOrder></m:SortOrder>'
                    f'<m:ParentFolderIds><t:FolderId Id="{folder.id}"/></m:ParentFolderIds></m:FindItem>')
            root = ET.fromstring(soap(deployment, body).text)
            return [e.text for e in root.iter(f"{{{T}}}Subject")]

        assert page(0, 10) == expected[:10]
        assert page(25, 10) == expected[25:]
        assert page(20, 10) == expected[20:30]
        assert page(0, 7, "End") == expected[23:]
        assert page(5, 7, "End") == expected[18:25]
        assert page(28, 7, "End") == expected[:2]
        by_date = [m.subject for m in folder.all().order_by("-datetime_received")[:3]]
        assert by_date == ["p29", "p28", "p27"]
    finally:
        folder.delete()


def test_free_busy_expands_recurrences(alice, bob):
    from exchangelib import CalendarItem, EWSDate, EWSDateTime, EWSTimeZone
    from exchangelib.recurrence import Recurrence, WeeklyPattern

    tz = EWSTimeZone("UTC")
    first = EWSDateTime(2026, 12, 14, 10, 0, tzinfo=tz)  # a Monday
    item = CalendarItem(folder=bob.calendar, subject="Weekly sync", start=first, end=first + datetime.timedelta(hours=1),
                        legacy_free_busy_status="Busy",
                        recurrence=Recurrence(pattern=WeeklyPattern(interval=1, weekdays=[1, 3]),
                                              start=EWSDate(2026, 12, 14), number=4))
    item.save()
    try:
        view = list(alice.protocol.get_free_busy_info(
            accounts=[(bob, "Required", False)], start=EWSDateTime(2026, 12, 14, tzinfo=tz),
            end=EWSDateTime(2026, 12, 28, tzinfo=tz), merged_free_busy_interval=60, requested_view="FreeBusy"))[0]
        starts = [(e.start.day, e.start.hour) for e in view.calendar_events]
        # Monday 14, Wednesday 16, Monday 21, Wednesday 23 at 10:00; then the count (4) ends it.
        assert starts == [(14, 10), (16, 10), (21, 10), (23, 10)], starts
    finally:
        item.delete()


def test_mail_tips_report_out_of_office(alice, bob):
    """exchangelib's acc.mail_tips (GetMailTips with its stray text) for oneself, and a raw
    request for a colleague who is away and an external address."""
    from exchangelib import OofSettings

    tips = alice.mail_tips
    assert tips.recipient_address.email_address == ALICE and tips.out_of_office is None
    bob.oof_settings = OofSettings(state=OofSettings.ENABLED, internal_reply="On leave", external_reply="Away")
    try:
        body = (f"<m:GetMailTips>All<m:SendingAs><t:EmailAddress>{ALICE}</t:EmailAddress></m:SendingAs><m:Recipients>"
                f"<t:Mailbox><t:EmailAddress>{BOB}</t:EmailAddress></t:Mailbox>"
                "<t:Mailbox><t:EmailAddress>x@elsewhere.example</t:EmailAddress></t:Mailbox></m:Recipients>"
                "<m:MailTipsRequested>All</m:MailTipsRequested></m:GetMailTips>")
        root = ET.fromstring(soap(deployment_of(alice), body).text)
        tips = list(root.iter(f"{{{M}}}MailTips"))
        assert tips[0].find(f"{{{T}}}OutOfOffice/{{{T}}}ReplyBody/{{{T}}}Message").text == "On leave"
        assert tips[1].find(f"{{{T}}}ExternalMemberCount").text == "1"
        assert tips[1].find(f"{{{T}}}OutOfOffice") is None
    finally:
        bob.oof_settings = OofSettings(state=OofSettings.DISABLED, internal_reply="", external_reply="")


def deployment_of(acc):
    return {"ews": acc.protocol.service_endpoint, "ca": os.environ["REQUESTS_CA_BUNDLE"]}
