"""XCAP (RFC 4825) for the contact list, driven with curl: the Front End serves each user's
Unified Contact Store as their resource-lists document (RFC 4826); an entry PUT from curl is a
contact exchangelib finds in the mailbox, a DELETE takes it off, a whole-document PUT moves
contacts between groups; entity tags and conditional requests as RFC 4825 §7.11 says; another
user's document, missing or wrong credentials and bad bodies each get their answer, and nothing
is written by a refused request.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_xcap.py -q
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from conftest import DEMO_PASSWORD, DOMAIN, Tandem
from test_oauth import wait_trust
from test_ucs import account, quick_contacts

RL = "urn:ietf:params:xml:ns:resource-lists"
ERR = "urn:ietf:params:xml:ns:xcap-error"
ALICE_SIP = f"sip:alice@{DOMAIN}"
BOB_SIP = f"sip:bob@{DOMAIN}"
CAROL_SIP = f"sip:carol@{DOMAIN}"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture(scope="module")
def xcap(tandem_bin, tmp_path_factory):
    t = Tandem(tandem_bin, tmp_path_factory.mktemp("xcap"))
    t.start()
    wait_trust(t)
    st = t.status()
    os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
    host = f"pool.{DOMAIN}"
    yield {"t": t, "ca": st["ca_certificate"], "ews": st["mailbox"]["ews_url"], "host": host,
           "root": f"https://{host}:{t.frontend_https_port}/xcap"}
    t.kill_all()


def path(xui: str, node: str = "") -> str:
    p = f"resource-lists/users/{urllib.parse.quote(xui, safe=':@')}/index"
    if node:
        p += "/~~/" + urllib.parse.quote(node, safe="/:@=")
    return p


def curl(x, method: str, p: str, body: str | None = None, user: str = "alice", password: str = DEMO_PASSWORD,
         headers: tuple[str, ...] = (), content_type: str = "application/xcap-el+xml"):
    """curl's status, headers (lower-case names) and body."""
    port = x["t"].frontend_https_port
    cmd = ["curl", "-sS", "-D", "-", "--globoff", "--cacert", x["ca"], "--resolve", f"{x['host']}:{port}:127.0.0.1",
           "-X", method, f"{x['root']}/{p}"]
    if user is not None:
        cmd += ["-u", f"{user}:{password}"]
    for h in headers:
        cmd += ["-H", h]
    if body is not None:
        cmd += ["-H", f"Content-Type: {content_type}", "--data-binary", "@-"]
    r = subprocess.run(cmd, input=body, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # text=True reads CRLF as LF.
    head, _, text = r.stdout.partition("\n\n")
    lines = head.split("\n")
    status = int(lines[0].split()[1])
    hdrs = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
    return status, hdrs, text


def document(x, user="alice", xui=ALICE_SIP) -> tuple[dict, str]:
    status, h, text = curl(x, "GET", path(xui), user=user)
    assert status == 200, text
    assert h.get("content-type", "").startswith("application/resource-lists+xml"), (h, text)
    root = ET.fromstring(text)
    assert root.tag == f"{{{RL}}}resource-lists", text
    lists = {l.get("name"): [e.get("uri") for e in l.findall(f"{{{RL}}}entry")] for l in root.findall(f"{{{RL}}}list")}
    return lists, h["etag"]


def entry(uri: str, name: str | None = None) -> str:
    inner = f"<display-name>{name}</display-name>" if name else ""
    return f'<entry xmlns="{RL}" uri="{uri}">{inner}</entry>'


def error_element(text: str) -> str:
    root = ET.fromstring(text)
    assert root.tag == f"{{{ERR}}}xcap-error", text
    return root[0].tag.split("}")[1]


def alice_quick_contacts(x) -> list[str]:
    acc = account(x)
    return [a.im_address for c in quick_contacts(acc).all() for a in (c.im_addresses or [])]


def test_the_document_is_the_contact_list(xcap):
    lists, etag = document(xcap)
    assert "Other Contacts" in lists and all(v == [] for v in lists.values()), lists
    assert etag.startswith('"') and etag.endswith('"')
    # The same tag again, and If-None-Match with it is a 304.
    assert document(xcap)[1] == etag
    status, _, _ = curl(xcap, "GET", path(ALICE_SIP), headers=(f"If-None-Match: {etag}",))
    assert status == 304


def test_an_entry_put_with_curl_is_a_contact_exchangelib_finds(xcap):
    _, before = document(xcap)
    node = f'resource-lists/list[@name="Friends"]/entry[@uri="{BOB_SIP}"]'
    status, h, text = curl(xcap, "PUT", path(ALICE_SIP, node), entry(BOB_SIP, "Bob Brown"))
    assert status == 201, text
    lists, after = document(xcap)
    assert lists["Friends"] == [BOB_SIP], lists
    assert h["etag"] == after != before
    assert BOB_SIP in alice_quick_contacts(xcap)
    # The element reads back alone; the same PUT again changes nothing and answers 200.
    status, h, text = curl(xcap, "GET", path(ALICE_SIP, node))
    assert status == 200 and h["content-type"].startswith("application/xcap-el+xml"), text
    assert ET.fromstring(text).get("uri") == BOB_SIP
    status, h, _ = curl(xcap, "PUT", path(ALICE_SIP, node), entry(BOB_SIP, "Bob Brown"))
    assert status == 200 and h["etag"] == after
    # A stale If-Match is refused and writes nothing.
    carol = f'resource-lists/list[@name="Friends"]/entry[@uri="{CAROL_SIP}"]'
    status, _, _ = curl(xcap, "PUT", path(ALICE_SIP, carol), entry(CAROL_SIP), headers=(f"If-Match: {before}",))
    assert status == 412
    assert document(xcap)[0]["Friends"] == [BOB_SIP]


def test_a_delete_takes_the_contact_off_the_list(xcap):
    node = f'resource-lists/list[@name="Work"]/entry[@uri="{CAROL_SIP}"]'
    status, _, text = curl(xcap, "PUT", path(ALICE_SIP, node), entry(CAROL_SIP))
    assert status == 201, text
    assert CAROL_SIP in alice_quick_contacts(xcap)
    _, etag = document(xcap)
    status, h, _ = curl(xcap, "DELETE", path(ALICE_SIP, node), headers=(f"If-Match: {etag}",))
    assert status == 200
    lists, after = document(xcap)
    assert lists["Work"] == [] and h["etag"] == after
    assert CAROL_SIP not in alice_quick_contacts(xcap)
    status, _, _ = curl(xcap, "DELETE", path(ALICE_SIP, node))
    assert status == 404


def test_a_whole_document_put_moves_contacts_between_groups(xcap):
    lists, _ = document(xcap)
    lists = {k: v for k, v in lists.items()}
    lists["Friends"] = []
    lists["Favorites"] = [BOB_SIP]
    lists["Work"] = [CAROL_SIP]
    body = f'<?xml version="1.0"?><resource-lists xmlns="{RL}">' + "".join(
        f'<list name="{n}">' + "".join(entry(u) for u in us) + "</list>" for n, us in lists.items()
    ) + "</resource-lists>"
    status, _, text = curl(xcap, "PUT", path(ALICE_SIP), body, content_type="application/resource-lists+xml")
    assert status == 200, text
    got, _ = document(xcap)
    assert got["Friends"] == [] and got["Favorites"] == [BOB_SIP] and got["Work"] == [CAROL_SIP], got
    assert sorted(alice_quick_contacts(xcap)) == sorted([BOB_SIP, CAROL_SIP])


def test_others_and_strangers_are_refused(xcap):
    status, _, _ = curl(xcap, "GET", path(BOB_SIP))
    assert status == 403
    status, _, _ = curl(xcap, "GET", path(f"sip:nobody@{DOMAIN}"))
    assert status == 403, "the same answer whether the user exists or not"
    status, h, _ = curl(xcap, "GET", path(ALICE_SIP), user=None)
    assert status == 401 and h["www-authenticate"].startswith("Basic"), h
    status, _, _ = curl(xcap, "GET", path(ALICE_SIP), password="wrong password")
    assert status == 401
    status, _, _ = curl(xcap, "GET", "pres-rules/users/sip:alice@x/index")
    assert status == 404


def test_bad_bodies_get_their_xcap_error_and_write_nothing(xcap):
    before = document(xcap)
    node = lambda uri: f'resource-lists/list[@name="Friends"]/entry[@uri="{uri}"]'  # noqa: E731
    cases = [
        (node(BOB_SIP), "<entry uri=", "not-well-formed"),
        (node(BOB_SIP), f'<list xmlns="{RL}" name="x"/>', "schema-validation-error"),
        (node(BOB_SIP), entry(CAROL_SIP), "constraint-failure"),
        (node(f"sip:nobody@{DOMAIN}"), entry(f"sip:nobody@{DOMAIN}"), "constraint-failure"),
        (node("tel:+14255550100"), entry("tel:+14255550100"), "constraint-failure"),
    ]
    for p, body, expected in cases:
        status, _, text = curl(xcap, "PUT", path(ALICE_SIP, p), body)
        assert status == 409, (body, text)
        assert error_element(text) == expected, (body, text)
    dup = f'<resource-lists xmlns="{RL}"><list name="a"/><list name="a"/></resource-lists>'
    status, _, text = curl(xcap, "PUT", path(ALICE_SIP), dup, content_type="application/resource-lists+xml")
    assert status == 409 and error_element(text) == "constraint-failure", text
    bomb = '<!DOCTYPE x [<!ENTITY a "aaaa">]><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>'
    status, _, text = curl(xcap, "PUT", path(ALICE_SIP), bomb, content_type="application/resource-lists+xml")
    assert status == 409 and error_element(text) == "not-well-formed", text
    status, _, _ = curl(xcap, "PUT", path(ALICE_SIP), "x" * (300 * 1024), content_type="application/resource-lists+xml")
    assert status == 413
    status, _, text = curl(xcap, "DELETE", path(ALICE_SIP))
    assert status == 409, text
    # Lists of 10,000 contacts: past the body limit (413), and, written compactly enough to fit,
    # past the 1,000 entries a list holds (409 constraint-failure).
    big = lambda n: (f'<resource-lists xmlns="{RL}"><list name="Other Contacts">'  # noqa: E731
                     + "".join(f'<entry uri="sip:c{i}@{DOMAIN}"/>' for i in range(n)) + "</list></resource-lists>")
    status, _, _ = curl(xcap, "PUT", path(ALICE_SIP), big(10_000), content_type="application/resource-lists+xml")
    assert status == 413
    status, _, text = curl(xcap, "PUT", path(ALICE_SIP), big(1_001), content_type="application/resource-lists+xml")
    assert status == 409 and error_element(text) == "constraint-failure" and "1000 entries" in text, text
    assert document(xcap) == before, "nothing was written"


def test_a_whole_document_of_new_contacts_is_checked_then_written_at_once(xcap):
    """A document PUT whose new contacts go to Other Contacts alone makes them with one EWS
    CreateItem in Quick Contacts (the bulk path): an address outside the directory among them is
    a 409 constraint-failure with nothing written; otherwise exchangelib finds each contact, with
    the directory's e-mail address, and the document reads back as put."""
    t = xcap["t"]
    r = t.run("user", "add", "erin", "--display-name", "Erin Evans", "--password-stdin", *t.location,
              input=DEMO_PASSWORD)
    assert r.returncode == 0, r.stderr
    erin = f"sip:erin@{DOMAIN}"

    def doc(groups):
        return (f'<?xml version="1.0"?><resource-lists xmlns="{RL}">' + "".join(
            f'<list name="{n}">' + "".join(entry(u) for u in us) + "</list>" for n, us in groups.items())
            + "</resource-lists>")

    before, _ = document(x=xcap, user="erin", xui=erin)
    bad = doc({"Other Contacts": [ALICE_SIP, BOB_SIP, f"sip:mallory@{DOMAIN}"]})
    status, _, text = curl(xcap, "PUT", path(erin), bad, user="erin", content_type="application/resource-lists+xml")
    assert status == 409 and error_element(text) == "constraint-failure", text
    assert document(xcap, user="erin", xui=erin)[0] == before, "nothing written"

    good = doc({"Other Contacts": [ALICE_SIP, BOB_SIP], "Favorites": [BOB_SIP]})
    status, _, text = curl(xcap, "PUT", path(erin), good, user="erin", content_type="application/resource-lists+xml")
    assert status == 200, text
    lists, _ = document(xcap, user="erin", xui=erin)
    assert sorted(lists["Other Contacts"]) == [ALICE_SIP, BOB_SIP] and lists["Favorites"] == [BOB_SIP], lists
    acc = account({"ews": xcap["ews"]}, f"erin@{DOMAIN}")
    found = {a.im_address.lower(): [e.email for e in (c.email_addresses or [])]
             for c in quick_contacts(acc).all() for a in (c.im_addresses or [])}
    assert found == {ALICE_SIP: [f"alice@{DOMAIN}"], BOB_SIP: [f"bob@{DOMAIN}"]}, found
