"""Unified Contact Store (MS-OXWSCOS) on the Mailbox: the Im* operations as raw SOAP, checked
against the schema's element names and namespaces, and exchangelib (PyPI) reading and writing
the same list as ordinary contacts in the hidden Quick Contacts folder. Bad input (an address
outside the directory, unknown ids, a bad tel: URI, a full list) gets its EWS response code and
writes nothing.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_ucs.py -q
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET

import pytest
import requests

from conftest import DEMO_PASSWORD, DOMAIN, Tandem, answer_notifies_on_stream

M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
S = "http://schemas.xmlsoap.org/soap/envelope/"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
CAROL = f"carol@{DOMAIN}"


@pytest.fixture(scope="module")
def deployment(tandem_bin, tmp_path_factory):
    t = Tandem(tandem_bin, tmp_path_factory.mktemp("ucs"))
    t.start()
    st = t.status()
    os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
    yield {"t": t, "ews": st["mailbox"]["ews_url"], "ca": st["ca_certificate"]}
    t.kill_all()
    from exchangelib.protocol import close_connections

    close_connections()


def account(d, address=ALICE):
    from exchangelib import BASIC, DELEGATE, Account, Configuration, Credentials, EWSTimeZone

    creds = Credentials(address, DEMO_PASSWORD)
    config = Configuration(service_endpoint=d["ews"], credentials=creds, auth_type=BASIC)
    return Account(address, credentials=creds, config=config, autodiscover=False, access_type=DELEGATE,
                   default_timezone=EWSTimeZone("UTC"))


def soap(d, body, version="Exchange2013", user=ALICE):
    env = (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}" xmlns:m="{M}" xmlns:t="{T}">'
           f'<s:Header><t:RequestServerVersion Version="{version}"/></s:Header><s:Body>{body}</s:Body></s:Envelope>')
    return requests.post(d["ews"], data=env.encode(), headers={"Content-Type": "text/xml; charset=utf-8"},
                         auth=(user, DEMO_PASSWORD), verify=d["ca"], timeout=60)


def answer(r, op):
    """The {op}Response element (in the messages namespace), its ResponseClass and ResponseCode."""
    assert r.status_code == 200, r.text
    body = ET.fromstring(r.text).find(f"{{{S}}}Body")
    resp = body.find(f"{{{M}}}{op}Response")
    assert resp is not None, r.text
    return resp, resp.get("ResponseClass"), resp.findtext(f"{{{M}}}ResponseCode")


def im_list(d, user=ALICE):
    resp, cls, code = answer(soap(d, "<m:GetImItemList/>", user=user), "GetImItemList")
    assert (cls, code) == ("Success", "NoError")
    lst = resp.find(f"{{{M}}}ImItemList")
    assert lst is not None
    groups = {}
    for g in lst.iter(f"{{{T}}}ImGroup"):
        members = [i.get("Id") for i in g.iter(f"{{{T}}}ItemId")]
        groups[g.findtext(f"{{{T}}}DisplayName")] = {
            "type": g.findtext(f"{{{T}}}GroupType"),
            "id": g.find(f"{{{T}}}ExchangeStoreId").get("Id"),
            "members": members,
        }
    personas = {}
    for p in lst.iter(f"{{{T}}}Persona"):
        personas[p.findtext(f"{{{T}}}ImAddress")] = {
            "id": p.find(f"{{{T}}}PersonaId").get("Id"),
            "name": p.findtext(f"{{{T}}}DisplayName"),
            "source": p.find(f"{{{T}}}Attributions/{{{T}}}Attribution/{{{T}}}SourceId").get("Id"),
            "email": p.findtext(f"{{{T}}}EmailAddress/{{{T}}}EmailAddress"),
        }
    return groups, personas


def add_contact(d, address, group_id=None, name=None, user=ALICE):
    body = f"<m:ImAddress>{address}</m:ImAddress>"
    if name:
        body += f"<m:DisplayName>{name}</m:DisplayName>"
    if group_id:
        body += f'<m:GroupId Id="{group_id}"/>'
    return answer(soap(d, f"<m:AddNewImContactToGroup>{body}</m:AddNewImContactToGroup>", user=user),
                  "AddNewImContactToGroup")


def quick_contacts(acc):
    from exchangelib.folders import QuickContacts

    return acc.root.get_default_folder(QuickContacts)


# ---------------------------------------------------------------- the list and its schema


def test_new_list_has_the_default_groups_in_schema_form(deployment):
    resp, cls, code = answer(soap(deployment, "<m:GetImItemList/>", user=BOB), "GetImItemList")
    assert (cls, code) == ("Success", "NoError")
    # ImItemList is in the messages namespace, Groups/ImGroup and their children in types.
    groups = resp.find(f"{{{M}}}ImItemList/{{{T}}}Groups")
    assert groups is not None
    kinds = [(g.findtext(f"{{{T}}}DisplayName"), g.findtext(f"{{{T}}}GroupType")) for g in groups]
    assert kinds == [("Other Contacts", "IPM.DistList.MOC.OtherContacts"), ("Tagged", "IPM.DistList.MOC.Tagged"),
                     ("Favorites", "IPM.DistList.MOC.Favorites")]
    for g in groups:
        assert [c.tag.split("}")[1] for c in g] == ["DisplayName", "GroupType", "ExchangeStoreId"]
    # A second read makes no second set of groups.
    again, _ = im_list(deployment, user=BOB)
    assert sorted(again) == ["Favorites", "Other Contacts", "Tagged"]


def test_added_contact_is_a_persona_and_an_exchangelib_contact(deployment):
    resp, cls, code = add_contact(deployment, f"sip:Bob@{DOMAIN.upper()}")
    assert (cls, code) == ("Success", "NoError")
    p = resp.find(f"{{{M}}}Persona")
    assert p is not None
    names = [c.tag for c in p]
    assert all(n.startswith(f"{{{T}}}") for n in names)
    local = [n.split("}")[1] for n in names]
    # PersonaType's sequence order.
    for a, b in [("PersonaId", "DisplayName"), ("DisplayName", "EmailAddress"), ("EmailAddress", "ImAddress"),
                 ("ImAddress", "Attributions"), ("Attributions", "DisplayNames"), ("DisplayNames", "ImAddresses")]:
        assert local.index(a) < local.index(b), local
    assert p.findtext(f"{{{T}}}DisplayName") == "Bob Brown"
    assert p.findtext(f"{{{T}}}ImAddress") == f"sip:bob@{DOMAIN}"
    assert p.findtext(f"{{{T}}}EmailAddress/{{{T}}}EmailAddress") == BOB
    assert p.findtext(f"{{{T}}}Attributions/{{{T}}}Attribution/{{{T}}}IsQuickContact") == "true"

    groups, personas = im_list(deployment)
    bob = personas[f"sip:bob@{DOMAIN}"]
    assert bob["source"] in groups["Other Contacts"]["members"]
    # Adding the same address again reuses the contact.
    add_contact(deployment, f"bob@{DOMAIN}")
    assert len(im_list(deployment)[1]) == len(personas)

    # exchangelib sees an ordinary contact in Quick Contacts.
    acc = account(deployment)
    found = [c for c in quick_contacts(acc).all() if c.display_name == "Bob Brown"]
    assert len(found) == 1
    c = found[0]
    assert c.id == bob["source"]
    assert [a.im_address for a in c.im_addresses] == [f"sip:bob@{DOMAIN}"]
    assert [e.email for e in c.email_addresses] == [BOB]


def test_user_groups_rename_membership_and_removal(deployment):
    resp, cls, code = answer(soap(deployment, "<m:AddImGroup><m:DisplayName>Team</m:DisplayName></m:AddImGroup>"),
                             "AddImGroup")
    assert (cls, code) == ("Success", "NoError")
    g = resp.find(f"{{{M}}}ImGroup")
    assert g.findtext(f"{{{T}}}GroupType") == "IPM.DistList.MOC.UserGroup"
    team = g.find(f"{{{T}}}ExchangeStoreId").get("Id")
    _, cls, code = answer(soap(deployment, "<m:AddImGroup><m:DisplayName>team</m:DisplayName></m:AddImGroup>"),
                          "AddImGroup")
    assert (cls, code) == ("Error", "ErrorImGroupDisplayNameAlreadyExists")

    resp, _, code = add_contact(deployment, f"sip:carol@{DOMAIN}", group_id=team, name="Carol C.")
    assert code == "NoError"
    carol = resp.find(f"{{{M}}}Persona/{{{T}}}Attributions/{{{T}}}Attribution/{{{T}}}SourceId").get("Id")
    groups, personas = im_list(deployment)
    assert groups["Team"]["members"] == [carol]
    assert carol not in groups["Other Contacts"]["members"]
    assert personas[f"sip:carol@{DOMAIN}"]["name"] == "Carol C."

    body = f'<m:SetImGroup><m:GroupId Id="{team}"/><m:NewDisplayName>Crew</m:NewDisplayName></m:SetImGroup>'
    assert answer(soap(deployment, body), "SetImGroup")[2] == "NoError"
    groups, _ = im_list(deployment)
    assert "Crew" in groups and "Team" not in groups and groups["Crew"]["members"] == [carol]

    # Bob into Favorites too, then out of it again.
    bob = im_list(deployment)[1][f"sip:bob@{DOMAIN}"]["source"]
    fav = groups["Favorites"]["id"]
    body = f'<m:AddImContactToGroup><m:ContactId Id="{bob}"/><m:GroupId Id="{fav}"/></m:AddImContactToGroup>'
    assert answer(soap(deployment, body), "AddImContactToGroup")[2] == "NoError"
    assert im_list(deployment)[0]["Favorites"]["members"] == [bob]
    body = f'<m:RemoveImContactFromGroup><m:ContactId Id="{bob}"/><m:GroupId Id="{fav}"/></m:RemoveImContactFromGroup>'
    assert answer(soap(deployment, body), "RemoveImContactFromGroup")[2] == "NoError"
    groups, _ = im_list(deployment)
    assert groups["Favorites"]["members"] == [] and bob in groups["Other Contacts"]["members"]

    # A removed group's contacts stay on the list, in Other Contacts; default groups stay.
    body = f'<m:RemoveImGroup><m:GroupId Id="{groups["Crew"]["id"]}"/></m:RemoveImGroup>'
    assert answer(soap(deployment, body), "RemoveImGroup")[2] == "NoError"
    groups, _ = im_list(deployment)
    assert "Crew" not in groups and carol in groups["Other Contacts"]["members"]
    body = f'<m:RemoveImGroup><m:GroupId Id="{groups["Other Contacts"]["id"]}"/></m:RemoveImGroup>'
    assert answer(soap(deployment, body), "RemoveImGroup")[1:] == ("Error", "ErrorInvalidOperation")


def test_exchangelib_contacts_join_the_list_and_leave_it(deployment):
    from exchangelib import Contact
    from exchangelib.indexed_properties import EmailAddress, ImAddress

    acc = account(deployment, CAROL)
    c = Contact(folder=quick_contacts(acc), display_name="Alice from exchangelib",
                email_addresses=[EmailAddress(label="EmailAddress1", email=ALICE)],
                im_addresses=[ImAddress(label="ImAddress1", im_address=f"sip:alice@{DOMAIN}")])
    c.save()
    groups, personas = im_list(deployment, user=CAROL)
    p = personas[f"sip:alice@{DOMAIN}"]
    assert p["name"] == "Alice from exchangelib" and p["source"] == c.id and p["email"] == ALICE
    assert c.id in groups["Other Contacts"]["members"]
    c.delete()
    groups, personas = im_list(deployment, user=CAROL)
    assert f"sip:alice@{DOMAIN}" not in personas and c.id not in groups["Other Contacts"]["members"]


def test_remove_contact_from_im_list_deletes_its_quick_contact(deployment):
    resp, _, code = add_contact(deployment, f"sip:alice@{DOMAIN}", user=BOB)
    assert code == "NoError"
    cid = resp.find(f"{{{M}}}Persona/{{{T}}}PersonaId").get("Id")
    body = f'<m:RemoveContactFromImList><m:ContactId Id="{cid}"/></m:RemoveContactFromImList>'
    assert answer(soap(deployment, body, user=BOB), "RemoveContactFromImList")[1:] == ("Success", "NoError")
    groups, personas = im_list(deployment, user=BOB)
    assert personas == {} and all(cid not in g["members"] for g in groups.values())
    assert [c for c in quick_contacts(account(deployment, BOB)).all()] == []
    assert answer(soap(deployment, body, user=BOB), "RemoveContactFromImList")[2] == "ErrorInvalidImContactId"


def test_tel_uri_contacts_and_get_im_items(deployment):
    body = ("<m:AddNewTelUriContactToGroup><m:TelUriAddress>tel:+14255550100</m:TelUriAddress>"
            f"<m:ImContactSipUriAddress>sip:+14255550100@{DOMAIN};user=phone</m:ImContactSipUriAddress>"
            "<m:ImTelephoneNumber>+1 425 555 0100</m:ImTelephoneNumber></m:AddNewTelUriContactToGroup>")
    resp, cls, code = answer(soap(deployment, body), "AddNewTelUriContactToGroup")
    assert (cls, code) == ("Success", "NoError")
    p = resp.find(f"{{{M}}}Persona")
    assert p.findtext(f"{{{T}}}ImAddress") == "tel:+14255550100"
    assert p.findtext(f"{{{T}}}DisplayName") == "+1 425 555 0100"
    cid = p.find(f"{{{T}}}PersonaId").get("Id")
    groups, _ = im_list(deployment)
    fav = groups["Favorites"]["id"]
    body = (f'<m:GetImItems><m:ContactIds><t:ItemId Id="{cid}"/></m:ContactIds>'
            f'<m:GroupIds><t:ItemId Id="{fav}"/></m:GroupIds></m:GetImItems>')
    resp, cls, code = answer(soap(deployment, body), "GetImItems")
    assert (cls, code) == ("Success", "NoError")
    assert [g.findtext(f"{{{T}}}DisplayName") for g in resp.iter(f"{{{T}}}ImGroup")] == ["Favorites"]
    assert [x.findtext(f"{{{T}}}ImAddress") for x in resp.iter(f"{{{T}}}Persona")] == ["tel:+14255550100"]


def test_parallel_additions_to_one_group_all_stay(deployment):
    """Sixteen AddNewTelUriContactToGroup into one group at once: each edit rewrites the group's
    member list, and each reads it inside its own write, so none of the sixteen is lost (read before
    the write, a later edit overwrote an earlier one's member)."""
    import concurrent.futures

    resp, cls, code = answer(soap(deployment, "<m:AddImGroup><m:DisplayName>Parallel</m:DisplayName></m:AddImGroup>",
                                  user=CAROL), "AddImGroup")
    assert (cls, code) == ("Success", "NoError")
    group = resp.find(f"{{{M}}}ImGroup/{{{T}}}ExchangeStoreId").get("Id")

    def add(n: int) -> str:
        number = f"+1425555{n:04d}"
        body = (f"<m:AddNewTelUriContactToGroup><m:TelUriAddress>tel:{number}</m:TelUriAddress>"
                f"<m:ImContactSipUriAddress>sip:{number}@{DOMAIN};user=phone</m:ImContactSipUriAddress>"
                f"<m:ImTelephoneNumber>{number}</m:ImTelephoneNumber><m:GroupId Id=\"{group}\"/>"
                "</m:AddNewTelUriContactToGroup>")
        return answer(soap(deployment, body, user=CAROL), "AddNewTelUriContactToGroup")[2]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(add, range(16)))
    assert codes == ["NoError"] * 16
    groups, personas = im_list(deployment, user=CAROL)
    members = groups["Parallel"]["members"]
    assert len(members) == len(set(members)) == 16, members
    assert {personas[f"tel:+1425555{n:04d}"]["source"] for n in range(16)} == set(members)


def test_migration_flag(deployment):
    for value in ("true", "false"):
        body = (f"<m:SetImListMigrationCompleted><m:ImListMigrationCompleted>{value}</m:ImListMigrationCompleted>"
                "</m:SetImListMigrationCompleted>")
        assert answer(soap(deployment, body), "SetImListMigrationCompleted")[1:] == ("Success", "NoError")


# ---------------------------------------------------------------- bad input


def test_bad_input_gets_its_code_and_writes_nothing(deployment):
    before = im_list(deployment)
    cases = [
        (f"<m:AddNewImContactToGroup><m:ImAddress>sip:mallory@{DOMAIN}</m:ImAddress></m:AddNewImContactToGroup>",
         "AddNewImContactToGroup", "ErrorNameResolutionNoResults"),
        ("<m:AddNewImContactToGroup><m:ImAddress>not an address</m:ImAddress></m:AddNewImContactToGroup>",
         "AddNewImContactToGroup", "ErrorInvalidRequest"),
        (f'<m:AddNewImContactToGroup><m:ImAddress>sip:carol@{DOMAIN}</m:ImAddress><m:GroupId Id="AAAA"/>'
         "</m:AddNewImContactToGroup>", "AddNewImContactToGroup", "ErrorInvalidImGroupId"),
        ('<m:AddImContactToGroup><m:ContactId Id="AgAAAAAAAAAAAAAAAAAAAAAA"/></m:AddImContactToGroup>',
         "AddImContactToGroup", "ErrorInvalidImContactId"),
        ('<m:SetImGroup><m:GroupId Id="nope"/><m:NewDisplayName>x</m:NewDisplayName></m:SetImGroup>',
         "SetImGroup", "ErrorInvalidImGroupId"),
        ("<m:AddNewTelUriContactToGroup><m:TelUriAddress>4255550100</m:TelUriAddress>"
         "<m:ImContactSipUriAddress>sip:x@y.com</m:ImContactSipUriAddress><m:ImTelephoneNumber>1</m:ImTelephoneNumber>"
         "</m:AddNewTelUriContactToGroup>", "AddNewTelUriContactToGroup", "ErrorInvalidRequest"),
        (f"<m:AddDistributionGroupToImList><m:SmtpAddress>{BOB}</m:SmtpAddress><m:DisplayName>B</m:DisplayName>"
         "</m:AddDistributionGroupToImList>", "AddDistributionGroupToImList",
         "ErrorInvalidImDistributionGroupSmtpAddress"),
        (f'<m:RemoveDistributionGroupFromImList><m:GroupId Id="{before[0]["Favorites"]["id"]}"/>'
         "</m:RemoveDistributionGroupFromImList>", "RemoveDistributionGroupFromImList", "ErrorInvalidImGroupId"),
        ("<m:AddImGroup><m:DisplayName>" + "x" * 300 + "</m:DisplayName></m:AddImGroup>", "AddImGroup",
         "ErrorInvalidRequest"),
    ]
    for body, op, want in cases:
        _, cls, code = answer(soap(deployment, body), op)
        assert (cls, code) == ("Error", want), body
    assert im_list(deployment) == before

    # Malformed requests and old versions are SOAP faults.
    r = soap(deployment, "<m:AddImGroup/>")
    assert r.status_code == 500 and "ErrorSchemaValidation" in r.text
    r = soap(deployment, "<m:GetImItemList/>", version="Exchange2010_SP2")
    assert r.status_code == 500 and "ErrorIncorrectSchemaVersion" in r.text


@pytest.mark.timeout(600)
def test_ten_thousand_contacts_are_bounded(deployment):
    """Another client fills Quick Contacts with 10,000 contacts: the list shows the first 1,000
    (Exchange's UCS limit) and a new IM contact is refused with ErrorImContactLimitReached."""
    from exchangelib import Contact
    from exchangelib.indexed_properties import ImAddress

    acc = account(deployment, CAROL)
    folder = quick_contacts(acc)
    batch = [Contact(folder=folder, display_name=f"Contact {i}",
                     im_addresses=[ImAddress(label="ImAddress1", im_address=f"sip:c{i}@example.org")])
             for i in range(10_000)]
    acc.bulk_create(folder=folder, items=batch, chunk_size=500)
    _, personas = im_list(deployment, user=CAROL)
    assert len(personas) == 1000
    _, cls, code = add_contact(deployment, f"sip:bob@{DOMAIN}", user=CAROL)
    assert (cls, code) == ("Error", "ErrorImContactLimitReached")
    assert f"sip:bob@{DOMAIN}" not in im_list(deployment, user=CAROL)[1]


# ---------------------------------------------------------------- the list in SIP (RFC 4662)


@pytest.mark.timeout(120)
def test_sipp_subscribes_to_the_contact_list_and_sees_a_deletion(tandem_bin, tmp_path):
    """Alice's list (made over EWS: Bob, and Carol by exchangelib) served at
    sip:alice-contacts@litwareinc.com: SIPp subscribes with Supported: eventlist and gets a
    full-state multipart/related NOTIFY naming both with a PIDF part each; exchangelib deletes
    Carol's contact and a following full-state NOTIFY no longer names her."""
    import time

    from exchangelib import Contact
    from exchangelib.indexed_properties import ImAddress
    from test_sip import Peers, assert_sipp_ok, sip_endpoint, write_users

    t = Tandem(tandem_bin, tmp_path / "sip-list")
    t.start()
    peers = Peers(tmp_path / "peers")
    try:
        st = t.status()
        os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
        d = {"t": t, "ews": st["mailbox"]["ews_url"], "ca": st["ca_certificate"]}
        assert add_contact(d, f"sip:bob@{DOMAIN}")[2] == "NoError"
        acc = account(d)
        carol = Contact(folder=quick_contacts(acc), display_name="Carol Clark",
                        im_addresses=[ImAddress(label="ImAddress1", im_address=f"sip:carol@{DOMAIN}")])
        carol.save()

        users = write_users(tmp_path / "alice.csv", [("alice", DEMO_PASSWORD, "-")])
        run = peers.sipp("subscribe_contact_list.xml", sip_endpoint(t), "contact-list", users=users, calls=1,
                         budget=60, background=True)
        deadline = time.monotonic() + 30
        while "NOTIFY sip:" not in run.text(run.messages) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "NOTIFY sip:" in run.text(run.messages), run.report()
        deleted_at = time.monotonic()
        carol.delete()
        rc = run.wait(70)
        took = time.monotonic() - deleted_at
        assert_sipp_ok(run, 1, t)
        assert rc == 0, run.report()
        # Pushed by the mailbox's streaming notification, not polled.
        print(f"contact-list: deletion to the full-state NOTIFY without it took {took:.3f} s")
        assert took < 5, f"the deletion reached the subscriber after {took:.1f} s"
    finally:
        peers.kill_all()
        t.kill_all()


# ---------------------------------------------------------------- presence authorization from the list


@pytest.mark.timeout(180)
def test_the_lists_blocked_group_is_the_block_list(tandem_bin, tmp_path):
    """Bob signs in (a PUBLISH of "open") and puts Carol in the "Blocked Contacts" group of his
    list over EWS (AddImGroup, AddNewImContactToGroup). SIPp watchers: Carol, blocked, is told
    Bob is offline (<basic>closed</basic>, and none of what Bob published); Alice, not on Bob's
    list, still sees him open (same organisation, privacy mode off). Then, with a watcher of
    Carol's held open, Bob takes her out of the group and her next NOTIFY shows him open; putting
    her back sends the offline view again."""
    from test_calendar_presence import Agent, pidf_doc
    from test_oauth import wait_trust
    from test_sip import Peers, assert_sipp_ok, sip_endpoint, sip_messages, write_users

    t = Tandem(tandem_bin, tmp_path / "blocking")
    t.start()
    wait_trust(t)
    peers = Peers(tmp_path / "peers")
    bob = carol_watch = None
    try:
        st = t.status()
        os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
        d = {"t": t, "ews": st["mailbox"]["ews_url"], "ca": st["ca_certificate"]}
        resp, cls, code = answer(
            soap(d, "<m:AddImGroup><m:DisplayName>Blocked Contacts</m:DisplayName></m:AddImGroup>", user=BOB),
            "AddImGroup")
        assert (cls, code) == ("Success", "NoError"), resp
        blocked_group = resp.find(f"{{{M}}}ImGroup/{{{T}}}ExchangeStoreId").get("Id")
        resp, _, code = add_contact(d, f"sip:carol@{DOMAIN}", group_id=blocked_group, user=BOB)
        assert code == "NoError"
        carol_contact = resp.find(f"{{{M}}}Persona/{{{T}}}Attributions/{{{T}}}Attribution/{{{T}}}SourceId").get("Id")

        bob = Agent(t, "bob")
        bob.publish(pidf_doc("open", None, "Working on the numbers"))

        def first_notify(watcher: str) -> str:
            run = peers.sipp("subscribe_notify.xml", sip_endpoint(t), f"{watcher}-watch-bob",
                             users=write_users(peers.dir / f"{watcher}.csv", [(watcher, DEMO_PASSWORD, "bob")]),
                             calls=1, budget=30)
            assert_sipp_ok(run, 1, t)
            notifies = [m for m in sip_messages(run.text(run.messages)) if m.lstrip().startswith("NOTIFY ")]
            assert notifies, run.report()
            return notifies[0]

        seen = first_notify("carol")
        assert "<basic>closed</basic>" in seen and "Working on the numbers" not in seen, seen
        seen = first_notify("alice")
        assert "<basic>open</basic>" in seen and "Working on the numbers" in seen, seen

        carol_watch = Agent(t, "carol")
        carol_watch.subscribe(f"sip:bob@{DOMAIN}")
        carol_watch.wait_notify(lambda b: "<basic>closed</basic>" in b, 10, "Bob offline to Carol")
        body = (f'<m:RemoveImContactFromGroup><m:ContactId Id="{carol_contact}"/>'
                f'<m:GroupId Id="{blocked_group}"/></m:RemoveImContactFromGroup>')
        assert answer(soap(d, body, user=BOB), "RemoveImContactFromGroup")[2] == "NoError"
        _, took = carol_watch.wait_notify(lambda b: "<basic>open</basic>" in b, 5, "Bob open to Carol once unblocked")
        print(f"unblocked → NOTIFY in {took:.2f} s")
        body = (f'<m:AddImContactToGroup><m:ContactId Id="{carol_contact}"/>'
                f'<m:GroupId Id="{blocked_group}"/></m:AddImContactToGroup>')
        assert answer(soap(d, body, user=BOB), "AddImContactToGroup")[2] == "NoError"
        body, _ = carol_watch.wait_notify(lambda b: "<basic>closed</basic>" in b, 5, "Bob offline to Carol again")
        assert "Working on the numbers" not in body, body
    finally:
        for a in (carol_watch, bob):
            if a is not None:
                a.close()
        peers.kill_all()
        t.kill_all()


# ---------------------------------------------------------------- a list too large for a datagram


@pytest.mark.timeout(180)
def test_a_full_state_notify_too_large_for_udp_goes_over_tcp(tandem_bin, tmp_path):
    """Alice has 250 contacts (Skype for Business's default MaxContacts; exchangelib saves them
    in Quick Contacts) and subscribes to her list over UDP from a port that also takes TCP
    connections, as RFC 3261 §18.1.1 expects of a client. The full-state RLMI NOTIFY (far more
    than a datagram holds) comes over a TCP connection the server opens to that address, names
    all 250 contacts with a PIDF part each, and is answered 200 there."""
    import socket
    import threading

    from exchangelib import Contact
    from exchangelib.indexed_properties import ImAddress
    from test_calendar_presence import Agent
    from test_oauth import wait_trust

    t = Tandem(tandem_bin, tmp_path / "big-list")
    t.start()
    wait_trust(t)
    agent = None
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        st = t.status()
        os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
        d = {"t": t, "ews": st["mailbox"]["ews_url"], "ca": st["ca_certificate"]}
        acc = account(d)
        folder = quick_contacts(acc)
        acc.bulk_create(folder=folder, items=[
            Contact(folder=folder, display_name=f"Contact {i:03}",
                    im_addresses=[ImAddress(label="ImAddress1", im_address=f"sip:c{i:03}@example.org")])
            for i in range(250)], chunk_size=250)
        assert len(im_list(d)[1]) == 250

        agent = Agent(t, "alice")
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", agent.port))
        listener.listen(4)
        got: list[str] = []
        done = threading.Event()

        def serve():
            conn, _ = listener.accept()

            def heard(head, body, _now):
                got.append(head + "\r\n\r\n" + body)
                done.set()

            answer_notifies_on_stream(conn, heard, lambda: not done.is_set())

        threading.Thread(target=serve, daemon=True).start()
        uri = f"sip:alice-contacts@{DOMAIN}"
        r, _ = agent.request("SUBSCRIBE", uri, uri, ["Event: presence", "Supported: eventlist",
                                                      "Accept: application/rlmi+xml, multipart/related",
                                                      "Expires: 600"])
        assert r.startswith("SIP/2.0 200"), r
        assert done.wait(30), f"no NOTIFY over TCP; over UDP: {[n[:300] for n in agent.notifies]}"
        notify = got[0]
        assert len(notify) > 65_507, len(notify)
        assert 'fullState="true"' in notify, notify[:2000]
        assert notify.count("application/pidf+xml") >= 250
        for i in (0, 124, 249):
            assert f"sip:c{i:03}@example.org" in notify
    finally:
        listener.close()
        if agent is not None:
            agent.close()
        t.kill_all()


# ---------------------------------------------------------------- migration and rollback (Deliver 3)

CLOCK = "TANDEM_UCS_CLOCK_OFFSET_SECS"


def ucs_report(t, sip):
    """`tandem test unified-contact-store --json`: its exit code and report."""
    r = t.run("test", "unified-contact-store", "--user-sip-address", sip, "--json", *t.location)
    assert r.stdout.strip(), r.stderr
    return r.returncode, __import__("json").loads(r.stdout)


def wait_location(t, sip, where, budget=20.0):
    import time

    deadline = time.monotonic() + budget
    while True:
        rc, out = ucs_report(t, sip)
        if out["Location"] == where:
            return rc, out
        assert time.monotonic() < deadline, f"the list of {sip} is still in {out['Location']}: {out}\n{t.logs()[-4000:]}"
        time.sleep(0.3)


def quick_addresses(d, address):
    """The IM addresses of the user's Quick Contacts as exchangelib reads them, each time seen."""
    acc = account(d, address)
    return sorted(a.im_address.lower() for c in quick_contacts(acc).all() for a in (c.im_addresses or []))


def sign_in(peers, t, user, name):
    """A SIPp REGISTER with digest (bench/sip/scenarios/register_digest.xml)."""
    from test_sip import assert_sipp_ok, sip_endpoint, write_users

    users = write_users(peers.dir / f"{name}.csv", [(user, DEMO_PASSWORD, "-")])
    run = peers.sipp("register_digest.xml", sip_endpoint(t), name, "-key", "expires", "600", users=users, calls=1,
                     budget=20)
    assert_sipp_ok(run, 1, t)


def resource_lists(groups: dict) -> str:
    rl = "urn:ietf:params:xml:ns:resource-lists"
    lists = "".join(f'<list name="{n}">' + "".join(f'<entry uri="{u}"/>' for u in us) + "</list>"
                    for n, us in groups.items())
    return f'<?xml version="1.0"?><resource-lists xmlns="{rl}">{lists}</resource-lists>'


@pytest.mark.timeout(420)
def test_a_front_end_list_moves_into_the_mailbox_at_sign_in_and_back_by_rollback(tandem_bin, tmp_path):
    """Alice's policy says UcsAllowed false, so the list curl PUTs over XCAP lives in the Front
    End store: the mailbox holds nothing, SIPp's list subscription is served from there and sees
    a contact curl deletes. With UcsAllowed true, her next sign-in (SIPp REGISTER) moves the list
    into the mailbox through the Im* operations, where exchangelib finds each contact once and
    test unified-contact-store says "mailbox". invoke-ucs-rollback moves it back (test says
    "frontend", blocked for seven days); an XCAP edit then goes to the Front End store only, and
    a sign-in does not migrate it again; with the clock a week on, the next sign-in does."""
    import time

    from test_oauth import wait_trust
    from test_sip import Peers, assert_sipp_ok, sip_endpoint, write_users
    from test_xcap import curl, document, path

    t = Tandem(tandem_bin, tmp_path / "migration")
    t.start()
    wait_trust(t)
    peers = Peers(tmp_path / "peers")
    alice, bob, carol, dave = (f"sip:{u}@{DOMAIN}" for u in ("alice", "bob", "carol", "dave"))
    try:
        st = t.status()
        os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
        d = {"t": t, "ews": st["mailbox"]["ews_url"], "ca": st["ca_certificate"]}
        host = f"pool.{DOMAIN}"
        x = {"t": t, "ca": st["ca_certificate"], "host": host, "root": f"https://{host}:{t.frontend_https_port}/xcap"}
        r = t.run("user", "add", "dave", "--display-name", "Dave Davis", "--password-stdin", *t.location,
                  input=DEMO_PASSWORD)
        assert r.returncode == 0, r.stderr

        # ---- UcsAllowed false: the list lives in the Front End store.
        r = t.run("cs", "set-user-services-policy", "--identity", alice, "--ucs-allowed", "false", *t.location)
        assert r.returncode == 0, r.stderr
        r = t.run("cs", "get-user-services-policy", "--identity", alice, "--json", *t.location)
        assert __import__("json").loads(r.stdout)[0]["UcsAllowed"] is False, r.stdout
        doc = resource_lists({"Other Contacts": [bob, carol], "Work": [carol]})
        status, _, text = curl(x, "PUT", path(alice), doc, content_type="application/resource-lists+xml")
        assert status == 200, text
        lists, _ = document(x)
        assert lists == {"Other Contacts": [bob, carol], "Work": [carol]}
        assert im_list(d)[1] == {}, "nothing reached the mailbox"
        rc, out = ucs_report(t, alice)
        assert (rc, out["Location"], out["Agree"]) == (0, "frontend", True), out
        assert (out["FrontEndStore"]["Contacts"], out["Mailbox"]["Contacts"]) == (2, 0), out

        # SIPp subscribes to the list: served from the Front End store; curl deletes Carol there.
        users = write_users(tmp_path / "alice.csv", [("alice", DEMO_PASSWORD, "-")])
        run = peers.sipp("subscribe_contact_list.xml", sip_endpoint(t), "fe-list", users=users, calls=1,
                         budget=60, background=True)
        deadline = time.monotonic() + 30
        while "NOTIFY sip:" not in run.text(run.messages) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "NOTIFY sip:" in run.text(run.messages), run.report()
        for group in ("Work", "Other Contacts"):
            status, _, text = curl(x, "DELETE", path(alice, f'resource-lists/list[@name="{group}"]/entry[@uri="{carol}"]'))
            assert status == 200, text
        rc = run.wait(70)
        assert_sipp_ok(run, 1, t)
        assert rc == 0, run.report()
        assert im_list(d)[1] == {}, "the Front End store's edits stay there"

        # ---- UcsAllowed true: the next sign-in moves the list into the mailbox.
        status, _, text = curl(x, "PUT", path(alice, f'resource-lists/list[@name="Work"]/entry[@uri="{carol}"]'),
                               f'<entry xmlns="urn:ietf:params:xml:ns:resource-lists" uri="{carol}"/>')
        assert status == 201, text
        r = t.run("cs", "set-user-services-policy", "--identity", alice, "--ucs-allowed", "true", *t.location)
        assert r.returncode == 0, r.stderr
        # (SIPp's list subscription is still live, so the policy change itself may start the
        # move; the sign-in does it otherwise.)
        sign_in(peers, t, "alice", "alice-register")
        rc, out = wait_location(t, alice, "mailbox")
        assert (rc, out["Agree"], out["FrontEndStore"]["Contacts"], out["Mailbox"]["Contacts"]) == (0, True, 0, 2), out
        assert quick_addresses(d, ALICE) == [bob, carol], "each contact once, as exchangelib sees them"
        groups, personas = im_list(d)
        assert groups["Work"]["members"] == [personas[carol]["source"]]
        assert personas[bob]["source"] in groups["Other Contacts"]["members"]
        lists, _ = document(x)
        assert lists["Work"] == [carol] and lists["Other Contacts"] == [bob], lists

        # ---- Rollback: back into the Front End store, held there for seven days.
        r = t.run("cs", "invoke-ucs-rollback", "--identity", alice, "--json", *t.location)
        assert r.returncode == 0, r.stderr
        assert __import__("json").loads(r.stdout)["Contacts"] == 2, r.stdout
        rc, out = ucs_report(t, alice)
        assert (rc, out["Location"], out["Agree"], out["FrontEndStore"]["Contacts"]) == (0, "frontend", True, 2), out
        assert out["MigrationBlockedUntil"], out
        r = t.run("cs", "invoke-ucs-rollback", "--identity", alice, *t.location)
        assert r.returncode == 2 and "already lives in the Front End store" in r.stderr, r.stderr
        status, _, text = curl(x, "PUT", path(alice, f'resource-lists/list[@name="Work"]/entry[@uri="{dave}"]'),
                               f'<entry xmlns="urn:ietf:params:xml:ns:resource-lists" uri="{dave}"/>')
        assert status == 201, text
        assert dave not in quick_addresses(d, ALICE), "an edit after the rollback stays in the Front End store"
        rc, out = ucs_report(t, alice)
        assert (rc, out["Agree"]) == (1, False), out
        sign_in(peers, t, "alice", "alice-register-2")
        time.sleep(3)
        assert ucs_report(t, alice)[1]["Location"] == "frontend", "no migration within seven days of a rollback"

        # ---- A week later (the clock moved), the next sign-in migrates again: one copy of each.
        # The server is killed, not stopped (a crash), and nothing of the list is lost by it.
        os.environ[CLOCK] = str(8 * 24 * 3600)
        try:
            t.proc.kill()
            t.restart()
        finally:
            del os.environ[CLOCK]
        sign_in(peers, t, "alice", "alice-register-3")
        rc, out = wait_location(t, alice, "mailbox", budget=40)
        assert (rc, out["Agree"], out["Mailbox"]["Contacts"]) == (0, True, 3), out
        assert quick_addresses(d, ALICE) == [bob, carol, dave]
    finally:
        os.environ.pop(CLOCK, None)
        peers.kill_all()
        t.kill_all()


@pytest.mark.timeout(240)
def test_a_migration_run_again_over_a_half_moved_list_leaves_one_copy(tandem_bin, tmp_path):
    """Bob's list is imported into the Front End store (import-contact-list, as
    Import-CsUserData); part of it is already in his mailbox, as a migration stopped by a crash
    leaves it (the Front End store changes only once the whole list is in). Nothing moves until
    he signs in (SIPp REGISTER); then exchangelib sees each contact once, in its groups."""
    import time

    from test_oauth import wait_trust
    from test_sip import Peers

    t = Tandem(tandem_bin, tmp_path / "rerun")
    t.start()
    wait_trust(t)
    peers = Peers(tmp_path / "peers")
    alice, bob, carol = (f"sip:{u}@{DOMAIN}" for u in ("alice", "bob", "carol"))
    try:
        st = t.status()
        os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
        d = {"t": t, "ews": st["mailbox"]["ews_url"], "ca": st["ca_certificate"]}
        f = tmp_path / "bob.xml"
        f.write_text(resource_lists({"Other Contacts": [alice, carol], "Friends": [carol]}))
        r = t.run("cs", "import-contact-list", "--identity", bob, "--file", str(f), *t.location)
        assert r.returncode == 0, r.stderr
        rc, out = ucs_report(t, bob)
        assert (out["Location"], out["FrontEndStore"]["Contacts"]) == ("frontend", 2), out
        time.sleep(2)
        assert ucs_report(t, bob)[1]["Location"] == "frontend", "nothing moves before a sign-in"
        # Half moved: Carol is in his mailbox's Other Contacts and a Friends group exists.
        assert add_contact(d, carol, user=BOB)[2] == "NoError"
        assert answer(soap(d, "<m:AddImGroup><m:DisplayName>Friends</m:DisplayName></m:AddImGroup>", user=BOB),
                      "AddImGroup")[2] == "NoError"
        sign_in(peers, t, "bob", "bob-register")
        rc, out = wait_location(t, bob, "mailbox")
        assert (rc, out["Agree"], out["Mailbox"]["Contacts"]) == (0, True, 2), out
        assert quick_addresses(d, BOB) == [alice, carol], "one copy of each contact"
        groups, personas = im_list(d, user=BOB)
        assert groups["Friends"]["members"] == [personas[carol]["source"]]
        assert sorted(groups["Other Contacts"]["members"]) == sorted([personas[alice]["source"],
                                                                      personas[carol]["source"]])
        assert len([n for n in groups if n == "Friends"]) == 1
    finally:
        peers.kill_all()
        t.kill_all()


def test_bad_contact_lists_are_refused_whole(deployment, tmp_path):
    """import-contact-list refuses a list of 10,000 contacts, an address outside the directory,
    a tel: entry and a file that is not a resource-lists document, each with exit 2 and what was
    wrong, and writes nothing; over XCAP, a list in the Front End store refuses an address outside
    the directory with 409 constraint-failure and keeps what it held."""
    from test_xcap import curl, document, error_element, path

    t = deployment["t"]
    bob = f"sip:bob@{DOMAIN}"
    cases = {
        "ten-thousand": (resource_lists({"Other Contacts": [f"sip:c{i}@{DOMAIN}" for i in range(10_000)]}),
                         "10000 entries: a contact list holds at most 1000 contacts"),
        "outsider": (resource_lists({"Other Contacts": [f"sip:alice@{DOMAIN}", f"sip:mallory@{DOMAIN}"]}),
                     "is no user of this organisation"),
        "tel": (resource_lists({"Other Contacts": ["tel:+14255550100"]}), "only sip: contacts"),
        "not-xml": ("<resource-lists", ""),
    }
    before = ucs_report(t, bob)[1]
    for name, (text, why) in cases.items():
        f = tmp_path / f"{name}.xml"
        f.write_text(text)
        r = t.run("cs", "import-contact-list", "--identity", bob, "--file", str(f), *t.location)
        assert r.returncode == 2, (name, r.stdout, r.stderr)
        assert why in r.stderr, (name, r.stderr)
    after = ucs_report(t, bob)[1]
    assert (after["Location"], after["FrontEndStore"]) == (before["Location"], before["FrontEndStore"]), after
    r = t.run("cs", "import-contact-list", "--identity", f"sip:mallory@{DOMAIN}", "--file", str(tmp_path / "tel.xml"),
              *t.location)
    assert r.returncode == 2 and "no such user" in r.stderr, r.stderr

    # XCAP on a Front End store list (UcsAllowed false for Bob).
    r = t.run("cs", "set-user-services-policy", "--identity", bob, "--ucs-allowed", "false", *t.location)
    assert r.returncode == 0, r.stderr
    st = t.status()
    host = f"pool.{DOMAIN}"
    x = {"t": t, "ca": st["ca_certificate"], "host": host, "root": f"https://{host}:{t.frontend_https_port}/xcap"}
    ok = resource_lists({"Other Contacts": [f"sip:alice@{DOMAIN}"]})
    status, _, text = curl(x, "PUT", path(bob), ok, user="bob", content_type="application/resource-lists+xml")
    if ucs_report(t, bob)[1]["Location"] == "mailbox":
        pytest.fail("Bob's list lived in the mailbox already; the fixture's order changed")
    assert status == 200, text
    held = document(x, user="bob", xui=bob)[0]
    bad = resource_lists({"Other Contacts": [f"sip:alice@{DOMAIN}", f"sip:mallory@{DOMAIN}"]})
    status, _, text = curl(x, "PUT", path(bob), bad, user="bob", content_type="application/resource-lists+xml")
    assert status == 409 and error_element(text) == "constraint-failure", text
    status, _, text = curl(x, "PUT", path(bob, f'resource-lists/list[@name="Work"]/entry[@uri="sip:mallory@{DOMAIN}"]'),
                           f'<entry xmlns="urn:ietf:params:xml:ns:resource-lists" uri="sip:mallory@{DOMAIN}"/>', user="bob")
    assert status == 409 and error_element(text) == "constraint-failure", text
    assert document(x, user="bob", xui=bob)[0] == held, "nothing written"
    r = t.run("cs", "set-user-services-policy", "--identity", bob, "--ucs-allowed", "true", *t.location)
    assert r.returncode == 0, r.stderr
