"""Online meetings scheduled in the mailbox and provisioned by the Front End (issue 15, items 3
and 8), driven with exchangelib as Outlook drives Exchange: alice marks a meeting online
(PidLidConferencingCheck, the flag Outlook and EWS's IsOnlineMeeting use), the Mailbox asks the
Front End's meeting API for a conference with an S2S token it signs (the reverse trust), and the
join information (SIP conference URI, web join URL, conference ID) is in alice's item and in the
invitations bob and carol get. Moving the meeting updates the conference, cancelling removes it
(`tandem cs get-conference`). Carol, alice's delegate, schedules one that alice organises. The
meeting API refuses calls without a token, with a forged one (PyJWT, a key of its own) and with
bob's token for alice's conference; an organizer who is not enabled for Skype for Business gets
the meeting saved without a conference.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_online_meetings.py -q
"""

from __future__ import annotations

import datetime
import json
import time

import jwt
import pytest
import requests

from conftest import DEMO_PASSWORD, DOMAIN
from test_meetings import add_delegate, delegate_account, meeting_items
from test_ucs import account, deployment  # noqa: F401  (the module's deployment fixture)

ALICE, BOB, CAROL = (f"{u}@{DOMAIN}" for u in ("alice", "bob", "carol"))
EXCHANGE = "00000002-0000-0ff1-ce00-000000000000"
LYNC = "00000004-0000-0ff1-ce00-000000000000"
API = "/meetings/v1/conferences"


@pytest.fixture(scope="module")
def online(deployment):  # noqa: F811
    """exchangelib knows PidLidConferencingCheck and the add-in's conf link on calendar items."""
    from exchangelib import CalendarItem, ExtendedProperty
    from exchangelib.items import MeetingRequest

    class ConferencingCheck(ExtendedProperty):
        distinguished_property_set_id = "Appointment"
        property_id = 0x8240
        property_type = "Boolean"

    class ConfLink(ExtendedProperty):
        distinguished_property_set_id = "PublicStrings"
        property_name = "OnlineMeetingConfLink"
        property_type = "String"

    CalendarItem.register("conferencing_check", ConferencingCheck)
    CalendarItem.register("conf_link", ConfLink)
    MeetingRequest.register("conf_link", ConfLink)
    st = deployment["t"].status()
    yield {**deployment, "fe": st["frontend"]["https_url"], "mbx": st["mailbox"]["https_url"]}
    CalendarItem.deregister("conferencing_check")
    CalendarItem.deregister("conf_link")
    MeetingRequest.deregister("conf_link")


def conferences(d, organizer):
    t = d["t"]
    r = t.run("cs", "get-conference", "--organizer", f"sip:{organizer}", "--json", *t.location)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout or "[]")
    return out if isinstance(out, list) else [out]


def cid(c):
    """The conference's id as `get-conference --json` names it (Get-CsConference's ConferenceId)."""
    return c.get("ConferenceId", c.get("id"))


def conference_start(c) -> int:
    for k in ("starts_at", "StartTime", "start", "Start"):
        if k in c and c[k] is not None:
            v = c[k]
            if isinstance(v, (int, float)):
                return int(v)
            return int(datetime.datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp())
    raise AssertionError(f"no start in {c}")


def conference_id_of(item) -> str:
    # The focus URI's opaque id is the conference's id.
    link = item.conf_link or ""
    assert "opaque=app:conf:focus:id:" in link, link
    return link.rsplit(":", 1)[1]


def new_online_meeting(acc, folder, subject, start, attendees):
    from exchangelib import CalendarItem
    from exchangelib.items import SEND_TO_ALL_AND_SAVE_COPY

    m = CalendarItem(account=acc, folder=folder, subject=subject, start=start, end=start + datetime.timedelta(hours=1),
                     body="Agenda: the plan", required_attendees=attendees, conferencing_check=True)
    m.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    return m


def mailbox_token(d, user, target):
    """A token the Mailbox signs acting as `user` for the Front End (Test-OAuthConnectivity -Service Generic)."""
    t = d["t"]
    r = t.run("test", "oauth-connectivity", "--service", "Generic", "--target-uri", target, "--mailbox", user,
              "--show-token", "--json", *t.location)
    out = json.loads(r.stdout)
    assert out["ok"], out
    return out["token"]


def test_an_online_meeting_is_provisioned_moved_and_cancelled(online):
    from exchangelib import EWSDateTime, UTC
    from exchangelib.items import MeetingRequest, SEND_TO_ALL_AND_SAVE_COPY

    alice, bob, carol = (account(online, a) for a in (ALICE, BOB, CAROL))
    start = EWSDateTime.now(UTC).replace(microsecond=0, second=0, minute=0) + datetime.timedelta(days=3)
    subject = f"Online sync {start.timestamp():.0f}"
    m = new_online_meeting(alice, alice.calendar, subject, start, [BOB, CAROL])

    mine = alice.calendar.get(id=m.id)
    assert mine.is_online_meeting is True
    assert "Join Skype Meeting" in mine.body and "Agenda: the plan" in mine.body
    conf_id = conference_id_of(mine)
    focus_uri = f"sip:alice@{DOMAIN};gruu;opaque=app:conf:focus:id:{conf_id}"
    assert focus_uri in mine.body, mine.body
    assert mine.conf_link == f"conf:{focus_uri}"

    for who, acc in (("bob", bob), ("carol", carol)):
        reqs = [x for x in acc.inbox.filter(subject=subject) if isinstance(x, MeetingRequest)]
        assert len(reqs) == 1, who
        assert focus_uri in reqs[0].body, f"{who}'s invitation carries the conference URI"
        assert "Join Skype Meeting" in reqs[0].body

    listed = [c for c in conferences(online, ALICE) if cid(c) == conf_id]
    assert len(listed) == 1, conferences(online, ALICE)
    assert conference_start(listed[0]) == int(start.timestamp())

    [x for x in bob.inbox.filter(subject=subject) if isinstance(x, MeetingRequest)][0].accept()
    mine = alice.calendar.get(id=m.id)
    got = {a.mailbox.email_address.lower(): a.response_type for a in mine.required_attendees}
    assert got[BOB] == "Accept", got

    # Moved: the conference follows.
    later = start + datetime.timedelta(hours=3)
    m.start, m.end = later, later + datetime.timedelta(hours=1)
    m.save(update_fields=["start", "end"], send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    listed = [c for c in conferences(online, ALICE) if cid(c) == conf_id]
    assert conference_start(listed[0]) == int(later.timestamp()), listed
    assert alice.calendar.get(id=m.id).body.count("Join Skype Meeting") == 1, "one join block"

    # Cancelled: the conference is gone.
    m.cancel()
    assert [c for c in conferences(online, ALICE) if cid(c) == conf_id] == []


def test_a_delegate_schedules_an_online_meeting_the_owner_organises(online):
    from exchangelib import EWSDateTime, UTC
    from exchangelib.items import MeetingRequest, SEND_TO_ALL_AND_SAVE_COPY

    add_delegate(online, ALICE, CAROL, "Editor", False)
    alice, bob = account(online, ALICE), account(online, BOB)
    carol_for_alice = delegate_account(online, ALICE, CAROL)
    start = EWSDateTime.now(UTC).replace(microsecond=0, second=0, minute=0) + datetime.timedelta(days=4)
    subject = f"Delegated online {start.timestamp():.0f}"
    m = new_online_meeting(carol_for_alice, carol_for_alice.calendar, subject, start, [BOB])
    mine = meeting_items(alice, subject)
    assert len(mine) == 1 and mine[0].organizer.email_address.lower() == ALICE
    conf_id = conference_id_of(mine[0])
    listed = [c for c in conferences(online, ALICE) if cid(c) == conf_id]
    assert len(listed) == 1, "the conference is alice's"
    req = [x for x in bob.inbox.filter(subject=subject) if isinstance(x, MeetingRequest)][0]
    assert req.sender.email_address.lower() == CAROL and req.author.email_address.lower() == ALICE
    assert f"opaque=app:conf:focus:id:{conf_id}" in req.body
    m.delete(send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY)
    assert [c for c in conferences(online, ALICE) if cid(c) == conf_id] == []


def test_the_meeting_api_refuses_missing_forged_and_foreign_tokens(online):
    from cryptography.hazmat.primitives.asymmetric import rsa

    fe, ca = online["fe"], online["ca"]
    body = {"organizer": ALICE, "subject": "x", "start": "2027-01-05T10:00:00Z", "end": "2027-01-05T11:00:00Z",
            "attendees": [BOB], "uid": f"api-test-{time.time():.0f}"}
    r = requests.post(fe + API, json=body, verify=ca, timeout=30)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer "), (r.status_code, r.headers)
    assert f'client_id="{LYNC}"' in r.headers["WWW-Authenticate"]

    # Forged: the Mailbox's issuer and key id, signed with a key of our own (PyJWT).
    meta = requests.get(online["mbx"] + "/autodiscover/metadata/json/1", verify=ca, timeout=30).json()
    x5t = meta["keys"][0]["keyinfo"]["x5t"]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    host = fe.split("://", 1)[1].rsplit(":", 1)[0]
    now = int(time.time())
    aud = f"{LYNC}/{host}@{DOMAIN}"
    actor = jwt.encode({"aud": aud, "iss": f"{EXCHANGE}@{DOMAIN}", "nameid": f"{EXCHANGE}@{DOMAIN}",
                        "nbf": str(now), "exp": str(now + 600), "trustedfordelegation": "true"},
                       key, algorithm="RS256", headers={"x5t": x5t})
    forged = jwt.encode({"aud": aud, "iss": f"{EXCHANGE}@{DOMAIN}", "nameid": ALICE, "smtp": ALICE, "nbf": str(now),
                         "exp": str(now + 600), "actortoken": actor}, None, algorithm="none")
    r = requests.post(fe + API, json=body, headers={"Authorization": f"Bearer {forged}"}, verify=ca, timeout=30)
    assert r.status_code == 401, r.text
    assert "invalid_signature" in r.headers.get("x-ms-diagnostics", ""), r.headers

    # Alice's own token creates her conference; the same UID again answers the same conference.
    alice_token = mailbox_token(online, ALICE, fe + API)
    r = requests.post(fe + API, json=body, headers={"Authorization": f"Bearer {alice_token}"}, verify=ca, timeout=30)
    assert r.status_code == 201, r.text
    conf = r.json()
    assert conf["focus_uri"] == f"sip:alice@{DOMAIN};gruu;opaque=app:conf:focus:id:{conf['id']}"
    assert conf["join_url"].endswith(f"/meet/alice/{conf['id']}") and conf["conference_id"]
    again = requests.post(fe + API, json=body, headers={"Authorization": f"Bearer {alice_token}"}, verify=ca, timeout=30)
    assert again.status_code == 200 and again.json()["id"] == conf["id"]

    # Bob's (valid) token for alice's conference, or creating one for alice: 403.
    bob_token = mailbox_token(online, BOB, fe + API)
    bob_auth = {"Authorization": f"Bearer {bob_token}"}
    assert requests.put(f"{fe}{API}/{conf['id']}", json={**body, "organizer": BOB}, headers=bob_auth, verify=ca,
                        timeout=30).status_code == 403
    assert requests.delete(f"{fe}{API}/{conf['id']}", headers=bob_auth, verify=ca, timeout=30).status_code == 403
    assert requests.post(fe + API, json=body, headers=bob_auth, verify=ca, timeout=30).status_code == 403
    # Bad input: 400 with the reason.
    bad = requests.post(fe + API, json={**body, "end": "2027-01-05T09:00:00Z"},
                        headers={"Authorization": f"Bearer {alice_token}"}, verify=ca, timeout=30)
    assert bad.status_code == 400 and "ends before" in bad.json()["error"]
    assert requests.post(fe + API, data=b"{not json", headers={"Authorization": f"Bearer {alice_token}"},
                         verify=ca, timeout=30).status_code == 400
    r = requests.delete(f"{fe}{API}/{conf['id']}", headers={"Authorization": f"Bearer {alice_token}"}, verify=ca,
                        timeout=30)
    assert r.status_code == 204
    assert requests.delete(f"{fe}{API}/{conf['id']}", headers={"Authorization": f"Bearer {alice_token}"}, verify=ca,
                           timeout=30).status_code == 404


def test_an_organizer_without_skype_for_business_keeps_the_meeting(online):
    """erin has a mailbox but no SIP account: the Front End refuses the conference (403), and
    her meeting is saved without join information instead of failing."""
    from exchangelib import EWSDateTime, UTC

    t = online["t"]
    r = t.run("user", "add", "erin", "--display-name", "Erin Evans", "--password-stdin", *t.location,
              input=DEMO_PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert t.run("user", "disable", "erin", "--sip", *t.location).returncode == 0
    erin = account(online, f"erin@{DOMAIN}")
    start = EWSDateTime.now(UTC).replace(microsecond=0, second=0, minute=0) + datetime.timedelta(days=5)
    subject = f"No SIP {start.timestamp():.0f}"
    m = new_online_meeting(erin, erin.calendar, subject, start, [BOB])
    saved = erin.calendar.get(id=m.id)
    assert "Join Skype Meeting" not in (saved.body or "") and saved.conf_link is None
    r = t.run("cs", "get-conference", "--organizer", f"sip:erin@{DOMAIN}", "--json", *t.location)
    assert r.returncode == 2 and "not enabled for SIP" in r.stderr, "no conference for her anywhere"


def test_join_information_follows_when_the_front_end_answers_again(online):
    """The Mailbox cannot reach a Front End (its Lync partner application disabled): CreateItem
    still saves the meeting and sends the invitations, without join information; once the Front
    End can be reached the background retry provisions the conference, writes the join block into
    alice's item and sends bob an InformationUpdate carrying it."""
    from exchangelib import EWSDateTime, UTC
    from exchangelib.items import MeetingRequest

    t = online["t"]
    alice, bob = account(online, ALICE), account(online, BOB)
    set_lync = lambda on: t.run("exchange", "set-partner-application", "--name", "Lync", "--enabled", on,  # noqa: E731
                                *t.location)
    assert set_lync("false").returncode == 0
    try:
        start = EWSDateTime.now(UTC).replace(microsecond=0, second=0, minute=0) + datetime.timedelta(days=6)
        subject = f"Later online {start.timestamp():.0f}"
        m = new_online_meeting(alice, alice.calendar, subject, start, [BOB])
        assert "Join Skype Meeting" not in alice.calendar.get(id=m.id).body
        first = [x for x in bob.inbox.filter(subject=subject) if isinstance(x, MeetingRequest)]
        assert len(first) == 1 and "Join Skype Meeting" not in first[0].body
    finally:
        assert set_lync("true").returncode == 0
    deadline = time.monotonic() + 60
    while "Join Skype Meeting" not in alice.calendar.get(id=m.id).body:
        assert time.monotonic() < deadline, "the join information never came"
        time.sleep(1)
    conf_id = conference_id_of(alice.calendar.get(id=m.id))
    updates = [x for x in bob.inbox.filter(subject=subject) if isinstance(x, MeetingRequest)
               and x.meeting_request_type == "InformationUpdate"]
    assert len(updates) == 1 and f"opaque=app:conf:focus:id:{conf_id}" in updates[0].body
    assert [cid(c) for c in conferences(online, ALICE) if cid(c) == conf_id] == [conf_id]
