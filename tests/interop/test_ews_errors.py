"""Exchange's error behaviour, operation by operation: a missing item or folder, a folder id where
an item id belongs (and back), change keys under each ConflictResolution, a batch with one bad
element (the others succeed, answers in request order), and throttling (ErrorServerBusy with a
BackOffMilliseconds hint). Raw SOAP for the exact codes, exchangelib for what a client sees.
docs/FEATURES.md ("EWS error behaviour") has the same matrix as a table.

The deployment runs with `mailbox.ews_max_concurrency = 2` (Exchange's EwsMaxConcurrency is 27)
so that two held requests are enough to reach the limit.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_ews_errors.py -q
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest
import requests

from conftest import DEMO_PASSWORD, DOMAIN, Tandem

M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
S = "http://schemas.xmlsoap.org/soap/envelope/"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
UNKNOWN_ITEM = base64.b64encode(bytes([2]) + bytes(16)).decode()
UNKNOWN_FOLDER = base64.b64encode(bytes([1]) + bytes(16)).decode()
UNKNOWN_ATTACHMENT = base64.b64encode(bytes([3]) + bytes(16)).decode()
STALE_CK = base64.b64encode(b"CK" + (1).to_bytes(8, "big")).decode()
SHAPE = "<m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
FSHAPE = "<m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>"


@pytest.fixture(scope="module")
def deployment(tandem_bin, tmp_path_factory):
    t = Tandem(tandem_bin, tmp_path_factory.mktemp("ews-errors"), mailbox_extra="ews_max_concurrency = 2")
    t.start()
    st = t.status()
    os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
    yield {"t": t, "ews": st["mailbox"]["ews_url"], "ca": st["ca_certificate"]}
    t.kill_all()
    from exchangelib.protocol import close_connections

    close_connections()


@pytest.fixture(scope="module")
def alice(deployment):
    from exchangelib import BASIC, DELEGATE, Account, Configuration, Credentials, EWSTimeZone

    creds = Credentials(ALICE, DEMO_PASSWORD)
    config = Configuration(service_endpoint=deployment["ews"], credentials=creds, auth_type=BASIC)
    return Account(ALICE, credentials=creds, config=config, autodiscover=False, access_type=DELEGATE,
                   default_timezone=EWSTimeZone("UTC"))


def envelope(body):
    return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}" xmlns:m="{M}" xmlns:t="{T}">'
            f'<s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body>{body}</s:Body></s:Envelope>')


def soap(d, body):
    return requests.post(d["ews"], data=envelope(body).encode(), headers={"Content-Type": "text/xml; charset=utf-8"},
                         auth=(ALICE, DEMO_PASSWORD), verify=d["ca"], timeout=30)


def codes(r):
    root = ET.fromstring(r.text)
    fault = root.find(f".//{{{S}}}Fault")
    if fault is not None:
        return ["fault:" + fault.findtext("faultcode").split(":")[-1]]
    return [e.text for e in root.iter(f"{{{M}}}ResponseCode")]


@pytest.fixture(scope="module")
def ids(deployment, alice):
    """A draft (with an attachment), a second draft, a folder; ids and change keys."""
    from exchangelib import FileAttachment, Folder, Message

    m = Message(folder=alice.drafts, subject="error matrix", body="x", to_recipients=[BOB])
    m.attach(FileAttachment(name="a.txt", content=b"a"))
    m.save()
    other = Message(folder=alice.drafts, subject="error matrix two", body="y")
    other.save()
    f = Folder(parent=alice.inbox, name="error matrix folder")
    f.save()
    # Each item changed once after it was read: the change keys read first are stale.
    stale = {"item": m.changekey, "other": other.changekey}
    m.subject = "error matrix (changed)"
    m.save(update_fields=["subject"])
    other.subject = "error matrix two (changed)"
    other.save(update_fields=["subject"])
    m = alice.drafts.get(id=m.id)
    assert m.changekey != stale["item"]
    return {"item": m.id, "ck": m.changekey, "other": other.id, "folder": f.id, "inbox": alice.inbox.id,
            "attachment": m.attachments[0].attachment_id.id, "stale_item": stale["item"],
            "stale_other": stale["other"]}


def get_item(i):
    return f'<m:GetItem>{SHAPE}<m:ItemIds><t:ItemId Id="{i}"/></m:ItemIds></m:GetItem>'


def update_item(i, ck=None, conflict="AutoResolve", subject="changed"):
    ck_attr = f' ChangeKey="{ck}"' if ck else ""
    return (f'<m:UpdateItem ConflictResolution="{conflict}" MessageDisposition="SaveOnly"><m:ItemChanges><t:ItemChange>'
            f'<t:ItemId Id="{i}"{ck_attr}/><t:Updates><t:SetItemField><t:FieldURI FieldURI="item:Subject"/>'
            f'<t:Message><t:Subject>{subject}</t:Subject></t:Message></t:SetItemField></t:Updates></t:ItemChange>'
            '</m:ItemChanges></m:UpdateItem>')


def delete_item(i):
    return f'<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId Id="{i}"/></m:ItemIds></m:DeleteItem>'


def move_item(i, op="MoveItem"):
    return (f'<m:{op}><m:ToFolderId><t:DistinguishedFolderId Id="inbox"/></m:ToFolderId>'
            f'<m:ItemIds><t:ItemId Id="{i}"/></m:ItemIds></m:{op}>')


def send_item(i, ck=None):
    ck_attr = f' ChangeKey="{ck}"' if ck else ""
    return f'<m:SendItem SaveItemToFolder="false"><m:ItemIds><t:ItemId Id="{i}"{ck_attr}/></m:ItemIds></m:SendItem>'


def get_folder(f):
    return f'<m:GetFolder>{FSHAPE}<m:FolderIds><t:FolderId Id="{f}"/></m:FolderIds></m:GetFolder>'


def find_item(f):
    return (f'<m:FindItem Traversal="Shallow">{SHAPE}<m:ParentFolderIds><t:FolderId Id="{f}"/></m:ParentFolderIds>'
            '</m:FindItem>')


def update_folder(f):
    return (f'<m:UpdateFolder><m:FolderChanges><t:FolderChange><t:FolderId Id="{f}"/><t:Updates><t:SetFolderField>'
            '<t:FieldURI FieldURI="folder:DisplayName"/><t:Folder><t:DisplayName>renamed</t:DisplayName></t:Folder>'
            '</t:SetFolderField></t:Updates></t:FolderChange></m:FolderChanges></m:UpdateFolder>')


def delete_folder(f):
    return f'<m:DeleteFolder DeleteType="HardDelete"><m:FolderIds><t:FolderId Id="{f}"/></m:FolderIds></m:DeleteFolder>'


def move_folder(f):
    return (f'<m:MoveFolder><m:ToFolderId><t:DistinguishedFolderId Id="inbox"/></m:ToFolderId>'
            f'<m:FolderIds><t:FolderId Id="{f}"/></m:FolderIds></m:MoveFolder>')


def sync_items(f):
    return (f'<m:SyncFolderItems>{SHAPE}<m:SyncFolderId><t:FolderId Id="{f}"/></m:SyncFolderId>'
            '<m:MaxChangesReturned>10</m:MaxChangesReturned></m:SyncFolderItems>')


def subscribe(f):
    return (f'<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds><t:FolderId Id="{f}"/></t:FolderIds>'
            '<t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes><t:Timeout>5</t:Timeout>'
            '</m:PullSubscriptionRequest></m:Subscribe>')


def create_attachment(i):
    return (f'<m:CreateAttachment><m:ParentItemId Id="{i}"/><m:Attachments><t:FileAttachment><t:Name>x</t:Name>'
            '<t:Content>eA==</t:Content></t:FileAttachment></m:Attachments></m:CreateAttachment>')


def get_attachment(a):
    return f'<m:GetAttachment><m:AttachmentIds><t:AttachmentId Id="{a}"/></m:AttachmentIds></m:GetAttachment>'


def delete_attachment(a):
    return f'<m:DeleteAttachment><m:AttachmentIds><t:AttachmentId Id="{a}"/></m:AttachmentIds></m:DeleteAttachment>'


def get_events(sub):
    return f'<m:GetEvents><m:SubscriptionId>{sub}</m:SubscriptionId><m:Watermark>VFMxOjA=</m:Watermark></m:GetEvents>'


def unsubscribe(sub):
    return f"<m:Unsubscribe><m:SubscriptionId>{sub}</m:SubscriptionId></m:Unsubscribe>"


# (operation, case, request builder over the ids, expected codes). The same rows are the table in
# docs/FEATURES.md.
MATRIX = [
    ("GetItem", "missing item", lambda x: get_item(UNKNOWN_ITEM), ["ErrorItemNotFound"]),
    ("GetItem", "folder id as item id", lambda x: get_item(x["folder"]), ["ErrorItemNotFound"]),
    ("GetItem", "attachment id as item id", lambda x: get_item(x["attachment"]), ["ErrorInvalidIdMalformed"]),
    ("GetItem", "malformed id", lambda x: get_item("not-an-id"), ["ErrorInvalidIdMalformed"]),
    ("UpdateItem", "missing item", lambda x: update_item(UNKNOWN_ITEM), ["ErrorItemNotFound"]),
    ("UpdateItem", "folder id as item id", lambda x: update_item(x["folder"]), ["ErrorItemNotFound"]),
    ("UpdateItem", "stale change key, NeverOverwrite", lambda x: update_item(x["other"], x["stale_other"], "NeverOverwrite"),
     ["ErrorIrresolvableConflict"]),
    ("UpdateItem", "stale change key, AutoResolve", lambda x: update_item(x["other"], x["stale_other"], "AutoResolve"),
     ["NoError"]),
    ("UpdateItem", "stale change key, AlwaysOverwrite",
     lambda x: update_item(x["other"], x["stale_other"], "AlwaysOverwrite"), ["NoError"]),
    ("UpdateItem", "malformed change key", lambda x: update_item(x["other"], "bm90IGEga2V5", "AutoResolve"),
     ["ErrorInvalidChangeKey"]),
    ("DeleteItem", "missing item", lambda x: delete_item(UNKNOWN_ITEM), ["ErrorItemNotFound"]),
    ("DeleteItem", "folder id as item id", lambda x: delete_item(x["folder"]), ["ErrorItemNotFound"]),
    ("MoveItem", "missing item", lambda x: move_item(UNKNOWN_ITEM), ["ErrorItemNotFound"]),
    ("CopyItem", "missing item", lambda x: move_item(UNKNOWN_ITEM, "CopyItem"), ["ErrorItemNotFound"]),
    ("SendItem", "missing item", lambda x: send_item(UNKNOWN_ITEM), ["ErrorItemNotFound"]),
    ("SendItem", "stale change key", lambda x: send_item(x["item"], x["stale_item"]), ["ErrorStaleObject"]),
    ("GetFolder", "missing folder", lambda x: get_folder(UNKNOWN_FOLDER), ["ErrorFolderNotFound"]),
    ("GetFolder", "item id as folder id", lambda x: get_folder(x["item"]), ["ErrorFolderNotFound"]),
    ("FindItem", "missing folder", lambda x: find_item(UNKNOWN_FOLDER), ["ErrorFolderNotFound"]),
    ("FindItem", "item id as folder id", lambda x: find_item(x["item"]), ["ErrorFolderNotFound"]),
    ("UpdateFolder", "missing folder", lambda x: update_folder(UNKNOWN_FOLDER), ["ErrorFolderNotFound"]),
    ("DeleteFolder", "missing folder", lambda x: delete_folder(UNKNOWN_FOLDER), ["ErrorFolderNotFound"]),
    ("DeleteFolder", "item id as folder id", lambda x: delete_folder(x["item"]), ["ErrorFolderNotFound"]),
    ("MoveFolder", "missing folder", lambda x: move_folder(UNKNOWN_FOLDER), ["ErrorFolderNotFound"]),
    ("SyncFolderItems", "missing folder", lambda x: sync_items(UNKNOWN_FOLDER), ["ErrorFolderNotFound"]),
    ("Subscribe", "missing folder", lambda x: subscribe(UNKNOWN_FOLDER), ["ErrorFolderNotFound"]),
    ("Subscribe", "item id as folder id", lambda x: subscribe(x["item"]), ["ErrorFolderNotFound"]),
    ("GetEvents", "missing subscription", lambda x: get_events("nosuchsubscription"), ["ErrorSubscriptionNotFound"]),
    ("Unsubscribe", "missing subscription", lambda x: unsubscribe("nosuchsubscription"),
     ["ErrorSubscriptionNotFound"]),
    ("CreateAttachment", "missing parent item", lambda x: create_attachment(UNKNOWN_ITEM), ["ErrorItemNotFound"]),
    ("GetAttachment", "missing attachment", lambda x: get_attachment(UNKNOWN_ATTACHMENT), ["ErrorItemNotFound"]),
    ("GetAttachment", "item id as attachment id", lambda x: get_attachment(x["item"]),
     ["ErrorInvalidIdNotAnItemAttachmentId"]),
    ("DeleteAttachment", "missing attachment", lambda x: delete_attachment(UNKNOWN_ATTACHMENT), ["ErrorItemNotFound"]),
    ("CreateItem", "missing target folder",
     lambda x: f'<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:FolderId Id="{UNKNOWN_FOLDER}"/>'
               '</m:SavedItemFolderId><m:Items><t:Message><t:Subject>x</t:Subject></t:Message></m:Items></m:CreateItem>',
     ["ErrorFolderNotFound"]),
    ("MoveItem", "missing target folder",
     lambda x: f'<m:MoveItem><m:ToFolderId><t:FolderId Id="{UNKNOWN_FOLDER}"/></m:ToFolderId>'
               f'<m:ItemIds><t:ItemId Id="{x["other"]}"/></m:ItemIds></m:MoveItem>',
     ["ErrorFolderNotFound"]),
    ("CreateFolder", "missing parent folder",
     lambda x: f'<m:CreateFolder><m:ParentFolderId><t:FolderId Id="{UNKNOWN_FOLDER}"/></m:ParentFolderId>'
               '<m:Folders><t:Folder><t:DisplayName>x</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>',
     ["ErrorFolderNotFound"]),
    ("FindFolder", "missing parent folder",
     lambda x: f'<m:FindFolder Traversal="Shallow">{FSHAPE}<m:ParentFolderIds><t:FolderId Id="{UNKNOWN_FOLDER}"/>'
               '</m:ParentFolderIds></m:FindFolder>',
     ["ErrorFolderNotFound"]),
    # Batches: one bad element; the others succeed and the answers keep the request's order.
    ("GetItem", "batch with one missing item",
     lambda x: f'<m:GetItem>{SHAPE}<m:ItemIds><t:ItemId Id="{x["item"]}"/><t:ItemId Id="{UNKNOWN_ITEM}"/>'
               f'<t:ItemId Id="{x["other"]}"/></m:ItemIds></m:GetItem>',
     ["NoError", "ErrorItemNotFound", "NoError"]),
    ("GetFolder", "batch with one missing folder",
     lambda x: f'<m:GetFolder>{FSHAPE}<m:FolderIds><t:FolderId Id="{UNKNOWN_FOLDER}"/>'
               '<t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>',
     ["ErrorFolderNotFound", "NoError"]),
    ("GetAttachment", "batch with one missing attachment",
     lambda x: f'<m:GetAttachment><m:AttachmentIds><t:AttachmentId Id="{UNKNOWN_ATTACHMENT}"/>'
               f'<t:AttachmentId Id="{x["attachment"]}"/></m:AttachmentIds></m:GetAttachment>',
     ["ErrorItemNotFound", "NoError"]),
]


@pytest.mark.parametrize("op,case,build,expected", MATRIX, ids=[f"{m[0]}: {m[1]}" for m in MATRIX])
def test_error_matrix(deployment, ids, op, case, build, expected):
    r = soap(deployment, build(ids))
    assert codes(r) == expected, r.text


def test_batches_write_the_good_elements_only(deployment, alice, ids):
    """UpdateItem and DeleteItem batches with one bad element: the good ones are written."""
    from exchangelib import Message

    a = Message(folder=alice.drafts, subject="batch a")
    a.save()
    b = Message(folder=alice.drafts, subject="batch b")
    b.save()
    body = update_item(a.id, a.changekey, "NeverOverwrite", "batch a changed")
    stale = update_item(b.id, STALE_CK, "NeverOverwrite", "batch b changed")
    inner = lambda x: x.split("<m:ItemChanges>")[1].split("</m:ItemChanges>")[0]  # noqa: E731
    both = body.replace(inner(body), inner(stale) + inner(body))
    r = soap(deployment, both)
    assert codes(r) == ["ErrorIrresolvableConflict", "NoError"]
    assert alice.drafts.get(id=a.id).subject == "batch a changed"
    assert alice.drafts.get(id=b.id).subject == "batch b"
    r = soap(deployment, f'<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId Id="{UNKNOWN_ITEM}"/>'
             f'<t:ItemId Id="{a.id}"/><t:ItemId Id="{ids["folder"]}"/><t:ItemId Id="{b.id}"/></m:ItemIds></m:DeleteItem>')
    assert codes(r) == ["ErrorItemNotFound", "NoError", "ErrorItemNotFound", "NoError"]
    assert alice.drafts.filter(subject__startswith="batch").count() == 0


def test_exchangelib_sees_the_conflict_and_the_stale_object(alice):
    from exchangelib.errors import ErrorIrresolvableConflict
    from exchangelib import Message

    m = Message(folder=alice.drafts, subject="conflict")
    m.save()
    old_ck = m.changekey
    m.subject = "first"
    m.save(update_fields=["subject"], conflict_resolution="NeverOverwrite")
    stale = alice.drafts.get(id=m.id)
    stale.changekey = old_ck
    stale.subject = "second"
    with pytest.raises(ErrorIrresolvableConflict):
        stale.save(update_fields=["subject"], conflict_resolution="NeverOverwrite")
    stale.save(update_fields=["subject"], conflict_resolution="AlwaysOverwrite")
    assert alice.drafts.get(id=m.id).subject == "second"
    m = alice.drafts.get(id=m.id)
    m.delete()


def hold_request(d):
    """A signed-in EWS request whose body never finishes arriving: it holds one of the user's
    places until the socket closes."""
    u = urllib.parse.urlsplit(d["ews"])
    ctx = ssl.create_default_context(cafile=d["ca"])
    raw = socket.create_connection((u.hostname, u.port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=u.hostname)
    auth = base64.b64encode(f"{ALICE}:{DEMO_PASSWORD}".encode()).decode()
    s.sendall((f"POST {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nAuthorization: Basic {auth}\r\n"
               "Content-Type: text/xml; charset=utf-8\r\nContent-Length: 100000\r\n\r\n<s:Envelope").encode())
    return s


def test_throttling_answers_server_busy_with_a_back_off(deployment, alice):
    from exchangelib.errors import ErrorServerBusy

    held = [hold_request(deployment), hold_request(deployment)]
    try:
        time.sleep(0.5)
        r = soap(deployment, get_folder(alice.inbox.id))
        assert r.status_code == 500
        root = ET.fromstring(r.text)
        assert root.find(f".//{{{S}}}Fault/faultcode").text.endswith(":ErrorServerBusy")
        value = root.find(f".//{{{S}}}Fault/detail/{{{T}}}MessageXml/{{{T}}}Value")
        assert value.get("Name") == "BackOffMilliseconds" and int(value.text) > 0
        # exchangelib reads the hint (its default policy fails fast and reports it).
        with pytest.raises(ErrorServerBusy) as e:
            alice.inbox.refresh()
        assert e.value.back_off == int(value.text) / 1000
        # Another user is not affected.
        bobs = f'<m:GetFolder>{FSHAPE}<m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>'
        r = requests.post(deployment["ews"], data=envelope(bobs).encode(), headers={"Content-Type": "text/xml; charset=utf-8"},
                          auth=(BOB, DEMO_PASSWORD), verify=deployment["ca"], timeout=30)
        assert codes(r) == ["NoError"]
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = soap(deployment, get_folder(alice.inbox.id))
        if codes(r) == ["NoError"]:
            break
        time.sleep(0.2)
    assert codes(r) == ["NoError"]
