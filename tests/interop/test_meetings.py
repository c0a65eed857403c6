"""Meeting requests between users (issue 15, deliverable 1), driven with exchangelib as Outlook
drives Exchange: alice saves a meeting with attendees and SendToAllAndSaveCopy; bob and carol
each get a MeetingRequest in the Inbox and a tentative item in the Calendar; bob accepts (his
item turns Busy, the request goes to Deleted Items, alice gets "Accepted: …" and sees bob's
answer on her attendee list), carol declines (her item goes); free/busy follows. Bad input: an
attendee outside the organisation, an answer to something that is not a meeting request.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_meetings.py -q
"""

from __future__ import annotations

import datetime

import pytest

from conftest import DOMAIN
from test_ucs import account, deployment  # noqa: F401  (the module's deployment fixture)

ALICE, BOB, CAROL = (f"{u}@{DOMAIN}" for u in ("alice", "bob", "carol"))


def meeting_items(acc, subject):
    return [i for i in acc.calendar.filter(subject=subject)]


def test_invitations_answers_and_free_busy(deployment):  # noqa: F811
    from exchangelib import CalendarItem, EWSDateTime, UTC
    from exchangelib.items import MeetingRequest, MeetingResponse, SEND_TO_ALL_AND_SAVE_COPY

    alice, bob, carol = (account(deployment, a) for a in (ALICE, BOB, CAROL))
    start = EWSDateTime.now(UTC).replace(microsecond=0, second=0, minute=0) + datetime.timedelta(days=2)
    subject = f"Planning {start.timestamp():.0f}"
    meeting = CalendarItem(account=alice, folder=alice.calendar, subject=subject, start=start,
                           end=start + datetime.timedelta(hours=1), location="Room 1",
                           required_attendees=[BOB], optional_attendees=[CAROL])
    meeting.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    mine = alice.calendar.get(id=meeting.id)
    assert mine.is_meeting and mine.meeting_request_was_sent and mine.my_response_type == "Organizer"

    requests = {}
    for who, acc in (("bob", bob), ("carol", carol)):
        got = [m for m in acc.inbox.filter(subject=subject) if isinstance(m, MeetingRequest)]
        assert len(got) == 1, f"{who} has one meeting request"
        assert got[0].is_read is False and got[0].start == start and got[0].location == "Room 1"
        requests[who] = got[0]
        cal = meeting_items(acc, subject)
        assert len(cal) == 1, f"{who} has the meeting in the Calendar"
        assert cal[0].my_response_type == "NoResponseReceived" and cal[0].legacy_free_busy_status == "Tentative"

    requests["bob"].accept(body="See you there")
    requests["carol"].decline()

    bob_item = meeting_items(bob, subject)[0]
    assert bob_item.my_response_type == "Accept" and bob_item.legacy_free_busy_status == "Busy"
    assert meeting_items(carol, subject) == [], "a declined meeting leaves the Calendar"
    assert [m for m in bob.inbox.filter(subject=subject) if isinstance(m, MeetingRequest)] == []
    assert [m.subject for m in bob.trash.filter(subject=subject)] == [subject], "the request is in Deleted Items"

    answers = sorted(m.subject for m in alice.inbox.all() if isinstance(m, MeetingResponse) and subject in m.subject)
    assert answers == [f"Accepted: {subject}", f"Declined: {subject}"], answers
    mine = alice.calendar.get(id=meeting.id)
    got = {a.mailbox.email_address.lower(): a.response_type for a in (mine.required_attendees or []) + (mine.optional_attendees or [])}
    assert got == {BOB: "Accept", CAROL: "Decline"}, got

    # Free/busy: bob busy during the meeting.
    from exchangelib.properties import MailboxData
    views = list(alice.protocol.get_free_busy_info(
        accounts=[(bob, "Required", False)], start=start - datetime.timedelta(hours=1),
        end=start + datetime.timedelta(hours=2), merged_free_busy_interval=30, requested_view="Detailed"))
    events = [e for e in (views[0].calendar_events or []) if e.start == start]
    assert events and events[0].busy_type == "Busy", views


def test_bad_invitations_and_answers_are_refused(deployment):  # noqa: F811
    from exchangelib import CalendarItem, EWSDateTime, UTC
    from exchangelib.errors import ErrorInvalidRecipients
    from exchangelib.items import SEND_TO_ALL_AND_SAVE_COPY

    alice = account(deployment, ALICE)
    start = EWSDateTime.now(UTC).replace(microsecond=0) + datetime.timedelta(days=3)
    outside = CalendarItem(account=alice, folder=alice.calendar, subject="Outside", start=start,
                           end=start + datetime.timedelta(hours=1), required_attendees=["someone@fabrikam.example"])
    with pytest.raises(ErrorInvalidRecipients):
        outside.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    assert meeting_items(alice, "Outside") == [], "nothing is written"
    # Accepting an ordinary message is refused.
    from exchangelib import Message
    m = Message(account=alice, folder=alice.drafts, subject="Not a meeting", body="x")
    m.save()
    from exchangelib.items import AcceptItem
    from exchangelib.properties import ReferenceItemId
    from exchangelib.errors import ErrorInvalidOperation
    with pytest.raises(ErrorInvalidOperation):
        AcceptItem(account=alice, reference_item_id=ReferenceItemId(id=m.id, changekey=m.changekey)).send()


def test_cancellations_reach_every_attendee(deployment):  # noqa: F811
    """The organizer cancels: by deleting with SendToAllAndSaveCopy, or with CancelCalendarItem
    (exchangelib's cancel()). Each attendee gets a MeetingCancellation and sees the meeting in
    the Calendar as cancelled; a cancellation of someone else's meeting is refused."""
    from exchangelib import CalendarItem, EWSDateTime, UTC
    from exchangelib.errors import ErrorInvalidOperation
    from exchangelib.items import MeetingCancellation, MeetingRequest, SEND_TO_ALL_AND_SAVE_COPY

    alice, bob = account(deployment, ALICE), account(deployment, BOB)
    start = EWSDateTime.now(UTC).replace(microsecond=0, second=0, minute=0) + datetime.timedelta(days=4)
    for how in ("delete", "cancel"):
        subject = f"Retro {how} {start.timestamp():.0f}"
        m = CalendarItem(account=alice, folder=alice.calendar, subject=subject, start=start,
                         end=start + datetime.timedelta(minutes=30), required_attendees=[BOB])
        m.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
        if how == "cancel":
            req = [x for x in bob.inbox.filter(subject=subject) if isinstance(x, MeetingRequest)][0]
            with pytest.raises(ErrorInvalidOperation):
                bob.calendar.get(subject=subject).cancel()
            assert req.subject == subject
            m.cancel()
        else:
            m.delete(send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY)
        notices = [x for x in bob.inbox.all() if isinstance(x, MeetingCancellation) and subject in x.subject]
        assert [n.subject for n in notices] == [f"Canceled: {subject}"], how
        theirs = [x for x in bob.calendar.all() if subject in x.subject]
        assert len(theirs) == 1 and theirs[0].is_cancelled and theirs[0].subject == f"Canceled: {subject}", how
        assert [x for x in alice.calendar.all() if x.subject == subject] == [], f"{how}: the organizer's meeting is gone"


def test_updates_reach_the_attendees(deployment):  # noqa: F811
    """The organizer changes the meeting with SendToAllAndSaveCopy: a new place keeps bob's
    answer (InformationUpdate); a new time asks for a new one (FullUpdate, tentative again); an
    attendee added gets the request, one removed the cancellation."""
    from exchangelib import CalendarItem, EWSDateTime, UTC
    from exchangelib.items import MeetingCancellation, MeetingRequest, SEND_TO_ALL_AND_SAVE_COPY

    alice, bob, carol = (account(deployment, a) for a in (ALICE, BOB, CAROL))
    start = EWSDateTime.now(UTC).replace(microsecond=0, second=0, minute=0) + datetime.timedelta(days=5)
    subject = f"Review {start.timestamp():.0f}"
    m = CalendarItem(account=alice, folder=alice.calendar, subject=subject, start=start,
                     end=start + datetime.timedelta(hours=1), location="Room 1", required_attendees=[BOB])
    m.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    [x for x in bob.inbox.filter(subject=subject) if isinstance(x, MeetingRequest)][0].accept()

    m.location = "Room 2"
    m.save(update_fields=["location"], send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    theirs = meeting_items(bob, subject)[0]
    assert theirs.location == "Room 2" and theirs.my_response_type == "Accept"
    updates = [x for x in bob.inbox.filter(subject=subject) if isinstance(x, MeetingRequest)]
    assert [u.meeting_request_type for u in updates] == ["InformationUpdate"], updates

    later = start + datetime.timedelta(hours=2)
    m.start, m.end = later, later + datetime.timedelta(hours=1)
    m.save(update_fields=["start", "end"], send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    theirs = meeting_items(bob, subject)[0]
    assert theirs.start == later and theirs.my_response_type == "NoResponseReceived"
    assert theirs.legacy_free_busy_status == "Tentative"
    kinds = sorted(u.meeting_request_type for u in bob.inbox.filter(subject=subject) if isinstance(u, MeetingRequest))
    assert kinds == ["FullUpdate", "InformationUpdate"], kinds

    m.required_attendees = [CAROL]
    m.save(update_fields=["required_attendees"], send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    assert [x.meeting_request_type for x in carol.inbox.filter(subject=subject) if isinstance(x, MeetingRequest)] == ["NewMeetingRequest"]
    assert len(meeting_items(carol, subject)) == 1
    assert [x.subject for x in bob.inbox.all() if isinstance(x, MeetingCancellation) and subject in x.subject] == [f"Canceled: {subject}"]


def delegate_account(d, owner, delegate):
    """`delegate` signed in, working in `owner`'s mailbox (exchangelib's access_type=DELEGATE)."""
    from exchangelib import BASIC, DELEGATE, Account, Configuration, Credentials, EWSTimeZone
    from test_ucs import DEMO_PASSWORD

    creds = Credentials(delegate, DEMO_PASSWORD)
    config = Configuration(service_endpoint=d["ews"], credentials=creds, auth_type=BASIC)
    return Account(owner, credentials=creds, config=config, autodiscover=False, access_type=DELEGATE,
                   default_timezone=EWSTimeZone("UTC"))


def add_delegate(d, owner, delegate, calendar_level, receive_copies):
    from test_ucs import answer, soap

    body = (f'<m:AddDelegate><m:Mailbox><t:EmailAddress>{owner}</t:EmailAddress></m:Mailbox><m:DelegateUsers>'
            f'<t:DelegateUser><t:UserId><t:PrimarySmtpAddress>{delegate}</t:PrimarySmtpAddress></t:UserId>'
            f'<t:DelegatePermissions><t:CalendarFolderPermissionLevel>{calendar_level}</t:CalendarFolderPermissionLevel>'
            f'</t:DelegatePermissions><t:ReceiveCopiesOfMeetingMessages>{str(receive_copies).lower()}'
            '</t:ReceiveCopiesOfMeetingMessages><t:ViewPrivateItems>false</t:ViewPrivateItems></t:DelegateUser>'
            '</m:DelegateUsers></m:AddDelegate>')
    _, cls, code = answer(soap(d, body, user=owner), "AddDelegate")
    assert cls == "Success", code


def test_a_delegate_schedules_for_the_owner(deployment):  # noqa: F811
    """Meeting delegation (issue 15, deliverable 2): carol, alice's delegate with Editor on her
    Calendar, schedules a meeting in alice's calendar with exchangelib's DELEGATE access. The
    organizer is alice; bob's MeetingRequest is from alice and sent by carol (Exchange's "on behalf
    of"); bob's answer reaches alice and, as carol receives copies of meeting messages
    (DeliverMeetingRequests DelegatesAndMe), carol too; carol moves and then cancels it. bob, a
    Reviewer only, is refused (ErrorAccessDenied) and nothing is written."""
    from exchangelib import CalendarItem, EWSDateTime, UTC
    from exchangelib.errors import ErrorAccessDenied
    from exchangelib.items import MeetingCancellation, MeetingRequest, MeetingResponse, SEND_TO_ALL_AND_SAVE_COPY

    add_delegate(deployment, ALICE, CAROL, "Editor", True)
    add_delegate(deployment, ALICE, BOB, "Reviewer", False)
    alice, bob, carol = (account(deployment, a) for a in (ALICE, BOB, CAROL))
    carol_for_alice = delegate_account(deployment, ALICE, CAROL)
    start = EWSDateTime.now(UTC).replace(microsecond=0, second=0, minute=0) + datetime.timedelta(days=6)
    subject = f"Board {start.timestamp():.0f}"
    m = CalendarItem(account=carol_for_alice, folder=carol_for_alice.calendar, subject=subject, start=start,
                     end=start + datetime.timedelta(hours=1), location="Room 7", required_attendees=[BOB])
    m.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)

    mine = meeting_items(alice, subject)
    assert len(mine) == 1 and mine[0].organizer.email_address.lower() == ALICE, mine
    assert mine[0].my_response_type == "Organizer"
    assert meeting_items(carol, subject) == [], "nothing lands in the delegate's own calendar"
    req = [x for x in bob.inbox.filter(subject=subject) if isinstance(x, MeetingRequest)]
    assert len(req) == 1, req
    assert req[0].author.email_address.lower() == ALICE, "From: the owner"
    assert req[0].sender.email_address.lower() == CAROL, "Sender: the delegate acting for her"

    req[0].accept()
    to_alice = [x.subject for x in alice.inbox.all() if isinstance(x, MeetingResponse) and subject in x.subject]
    to_carol = [x.subject for x in carol.inbox.all() if isinstance(x, MeetingResponse) and subject in x.subject]
    assert to_alice == [f"Accepted: {subject}"] and to_carol == [f"Accepted: {subject}"], (to_alice, to_carol)

    # The delegate changes the owner's meeting: the attendees get the update from alice.
    m.location = "Room 8"
    m.save(update_fields=["location"], send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    assert meeting_items(bob, subject)[0].location == "Room 8"
    assert meeting_items(alice, subject)[0].location == "Room 8"

    # A Reviewer reads but does not write.
    bob_for_alice = delegate_account(deployment, ALICE, BOB)
    assert [x.subject for x in bob_for_alice.calendar.filter(subject=subject)] == [subject]
    refused = CalendarItem(account=bob_for_alice, folder=bob_for_alice.calendar, subject=f"Not mine {subject}",
                           start=start, end=start + datetime.timedelta(hours=1))
    with pytest.raises(ErrorAccessDenied):
        refused.save()
    assert meeting_items(alice, f"Not mine {subject}") == []
    with pytest.raises(ErrorAccessDenied):
        bob_for_alice.calendar.get(subject=subject).delete()

    # The delegate cancels it for the owner (DeleteItem with SendMeetingCancellations: exchangelib's
    # cancel() first opens the owner's Sent Items, which a Calendar delegate may not, as on Exchange).
    m.delete(send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY)
    notices = [x.subject for x in bob.inbox.all() if isinstance(x, MeetingCancellation) and subject in x.subject]
    assert notices == [f"Canceled: {subject}"], notices
    assert meeting_items(alice, subject) == [], "the owner's meeting is gone"
