"""Working hours and out of office in the Mailbox (issue 10, Deliver 3), driven by exchangelib:
the WorkHours configuration of the Calendar (what Outlook and OWA write, created, updated and
deleted through Create/Update/DeleteUserConfiguration) is what GetUserAvailability returns as
WorkingHours; and mail to a user whose automatic replies are on gets one automatic reply per
sender, a real message in the sender's Inbox. (OOF calendar items in free/busy, digit 3 and
BusyType OOF: test_ews.py::test_free_busy_merged_and_detailed.)

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_oof_and_working_hours.py -q
"""

from __future__ import annotations

import datetime
import os
import time

import pytest

from conftest import DEMO_PASSWORD, DOMAIN, Tandem

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
CAROL = f"carol@{DOMAIN}"

# As Outlook writes it for Pacific time: 09:00-17:30, Monday to Thursday.
PACIFIC_HOURS = (
    '<?xml version="1.0"?><Root xmlns="WorkingHours.xsd"><WorkHoursVersion1><TimeZone><Bias>480</Bias>'
    "<Standard><Bias>0</Bias><ChangeDate><Time>02:00:00</Time><Date>0000/11/01</Date><DayOfWeek>0</DayOfWeek>"
    "</ChangeDate></Standard><DaylightSavings><Bias>-60</Bias><ChangeDate><Time>02:00:00</Time>"
    "<Date>0000/03/02</Date><DayOfWeek>0</DayOfWeek></ChangeDate></DaylightSavings>"
    "<Name>Pacific Standard Time</Name></TimeZone><TimeSlot><Start>09:00:00</Start><End>17:30:00</End></TimeSlot>"
    "<WorkDays>Monday Tuesday Wednesday Thursday</WorkDays></WorkHoursVersion1></Root>"
)


@pytest.fixture(scope="module")
def deployment(tandem_bin, tmp_path_factory):
    t = Tandem(tandem_bin, tmp_path_factory.mktemp("oof"))
    t.start()
    st = t.status()
    os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
    yield st["mailbox"]["ews_url"]
    t.kill_all()
    from exchangelib.protocol import close_connections

    close_connections()


def account(ews: str, address: str):
    from exchangelib import BASIC, DELEGATE, Account, Configuration, Credentials, EWSTimeZone

    creds = Credentials(address, DEMO_PASSWORD)
    config = Configuration(service_endpoint=ews, credentials=creds, auth_type=BASIC)
    return Account(address, credentials=creds, config=config, autodiscover=False, access_type=DELEGATE,
                   default_timezone=EWSTimeZone("UTC"))


def working_hours(viewer, owner):
    from exchangelib import EWSDateTime, EWSTimeZone

    day = EWSDateTime(2026, 12, 7, tzinfo=EWSTimeZone("UTC"))
    view = list(viewer.protocol.get_free_busy_info(accounts=[(owner, "Required", False)], start=day,
                                                   end=day + datetime.timedelta(days=1),
                                                   merged_free_busy_interval=60, requested_view="FreeBusy"))[0]
    return view.working_hours_timezone, view.working_hours


def test_working_hours_come_from_the_calendar_configuration(deployment):
    from exchangelib.errors import ErrorItemNotFound

    alice, bob = account(deployment, ALICE), account(deployment, BOB)
    # No configuration: Monday to Friday, 08:00-17:00 UTC.
    tz, periods = working_hours(alice, bob)
    assert tz.bias == 0
    assert [(p.weekdays, p.start, p.end) for p in periods] == [
        ([1, 2, 3, 4, 5], datetime.time(8, 0), datetime.time(17, 0))]
    with pytest.raises(ErrorItemNotFound):
        bob.calendar.get_user_configuration("WorkHours")
    bob.calendar.create_user_configuration("WorkHours", xml_data=PACIFIC_HOURS.encode())
    try:
        got = bob.calendar.get_user_configuration("WorkHours")
        assert got.xml_data == PACIFIC_HOURS.encode()
        # Another user asking for Bob's free/busy sees Bob's hours in Bob's zone.
        tz, periods = working_hours(alice, bob)
        assert tz.bias == 480
        assert tz.standard_time.iso_month == 11 and tz.daylight_time.iso_month == 3 and tz.daylight_time.bias == -60
        assert [(p.weekdays, p.start, p.end) for p in periods] == [
            ([1, 2, 3, 4], datetime.time(9, 0), datetime.time(17, 30))]
        # Alice's own hours are untouched.
        assert working_hours(alice, alice)[0].bias == 0
        # Outlook changes them: UpdateUserConfiguration replaces the XmlData.
        bob.calendar.update_user_configuration(
            "WorkHours", xml_data=PACIFIC_HOURS.replace("09:00:00", "07:30:00").encode())
        _, periods = working_hours(alice, bob)
        assert periods[0].start == datetime.time(7, 30)
    finally:
        bob.calendar.delete_user_configuration("WorkHours")
    with pytest.raises(ErrorItemNotFound):
        bob.calendar.delete_user_configuration("WorkHours")
    assert working_hours(alice, bob)[0].bias == 0


def test_a_second_configuration_of_the_same_name_is_refused(deployment):
    from exchangelib.errors import EWSError

    carol = account(deployment, CAROL)
    carol.inbox.create_user_configuration("Test.Settings", dictionary={"a": "1"})
    try:
        with pytest.raises(EWSError) as e:
            carol.inbox.create_user_configuration("Test.Settings", dictionary={"a": "2"})
        assert "ErrorItemSave" in type(e.value).__name__ or "already exists" in str(e.value)
        assert carol.inbox.get_user_configuration("Test.Settings").dictionary == {"a": "1"}
    finally:
        carol.inbox.delete_user_configuration("Test.Settings")


def replies(acc, subject: str, want: int, budget: float = 10):
    """The automatic replies about `subject` in `acc`'s Inbox, once there are `want` (or the
    budget is spent, then one more second to catch a surplus)."""
    deadline = time.monotonic() + budget
    while True:
        found = list(acc.inbox.filter(subject=f"Automatic reply: {subject}"))
        if len(found) >= want or time.monotonic() > deadline:
            time.sleep(1)
            return list(acc.inbox.filter(subject=f"Automatic reply: {subject}"))
        time.sleep(0.3)


def test_an_automatic_reply_goes_once_per_sender_until_oof_is_turned_on_again(deployment):
    from exchangelib import Mailbox, Message, OofSettings

    alice, bob, carol = account(deployment, ALICE), account(deployment, BOB), account(deployment, CAROL)
    bob.oof_settings = OofSettings(state=OofSettings.ENABLED, external_audience="All",
                                   internal_reply="Gone fishing until Monday", external_reply="Out of the office")
    try:
        for n in (1, 2):
            Message(account=alice, subject="Budget", body=f"Take {n}", to_recipients=[Mailbox(email_address=BOB)]
                    ).send()
        got = replies(alice, "Budget", 1)
        assert len(got) == 1, [r.subject for r in got]
        r = got[0]
        assert "Gone fishing until Monday" in r.body and "Out of the office" not in r.body
        assert r.sender.email_address.lower() == BOB
        assert r.item_class == "IPM.Note.Rules.OofTemplate.Microsoft"
        # Bob received both; his own mail to himself and the reply itself are never answered.
        assert len(list(bob.inbox.filter(subject="Budget"))) == 2
        assert not list(bob.inbox.filter(subject__startswith="Automatic reply"))
        # Another sender gets their own reply.
        Message(account=carol, subject="Lunch", body="?", to_recipients=[Mailbox(email_address=BOB)]).send()
        assert len(replies(carol, "Lunch", 1)) == 1
        # Turned off, no reply; turned on again, Alice is answered again.
        bob.oof_settings = OofSettings(state=OofSettings.DISABLED, internal_reply="", external_reply="")
        Message(account=alice, subject="While back", body="x", to_recipients=[Mailbox(email_address=BOB)]).send()
        assert replies(alice, "While back", 1, budget=2) == []
        bob.oof_settings = OofSettings(state=OofSettings.ENABLED, internal_reply="Away again", external_reply="Out")
        Message(account=alice, subject="Budget", body="Take 3", to_recipients=[Mailbox(email_address=BOB)]).send()
        got = replies(alice, "Budget", 2)
        assert len(got) == 2 and any("Away again" in r.body for r in got), [r.body for r in got]
    finally:
        bob.oof_settings = OofSettings(state=OofSettings.DISABLED, internal_reply="", external_reply="")
