"""DavMail 6 (Debian `davmail-server`, EWS mode) as an IMAP/SMTP/CalDAV gateway in front of our
EWS, driven with Python's imaplib and smtplib and raw CalDAV. DavMail trusts our CA through a
PKCS#12 trust store made with keytool (JAVA_TOOL_OPTIONS). See real-clients.md §2.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_davmail.py -q
"""

from __future__ import annotations

import imaplib
import os
import shutil
import smtplib
import socket
import subprocess
import time
from email.message import EmailMessage

import pytest
import requests

from conftest import DEMO_PASSWORD, DOMAIN, Tandem, free_ports

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"

pytestmark = pytest.mark.skipif(shutil.which("davmail-server") is None, reason="davmail-server is not installed")


def wait_port(port, budget=30.0):
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError(f"port {port} did not open within {budget:g} s")


@pytest.fixture(scope="module")
def davmail(tandem_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("davmail")
    t = Tandem(tandem_bin, root / "tandem")
    t.start()
    st = t.status()
    trust = root / "trust.p12"
    subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "tandem-ca", "-file", st["ca_certificate"],
                    "-keystore", str(trust), "-storetype", "PKCS12", "-storepass", "changeit"],
                   check=True, capture_output=True, timeout=60)
    imap, smtp, caldav, pop, ldap = free_ports(5)
    props = root / "davmail.properties"
    log = root / "davmail.log"
    props.write_text(
        "davmail.server=true\n"
        "davmail.mode=EWS\n"
        f"davmail.url={st['mailbox']['ews_url']}\n"
        "davmail.allowRemote=false\n"
        "davmail.bindAddress=127.0.0.1\n"
        f"davmail.caldavPort={caldav}\ndavmail.imapPort={imap}\ndavmail.smtpPort={smtp}\n"
        f"davmail.popPort={pop}\ndavmail.ldapPort={ldap}\n"
        "davmail.disableUpdateCheck=true\n"
        f"davmail.logFilePath={log}\n"
        "log4j.rootLogger=WARN\nlog4j.logger.davmail=DEBUG\n"
    )
    env = dict(os.environ)
    env["JAVA_TOOL_OPTIONS"] = (f"-Djavax.net.ssl.trustStore={trust} -Djavax.net.ssl.trustStorePassword=changeit "
                                "-Djavax.net.ssl.trustStoreType=PKCS12")
    out = open(root / "davmail.out", "wb")
    proc = subprocess.Popen(["davmail-server", str(props)], stdout=out, stderr=subprocess.STDOUT, env=env,
                            stdin=subprocess.DEVNULL)
    try:
        wait_port(imap)
        yield {"imap": imap, "smtp": smtp, "caldav": caldav, "log": log, "tandem": t}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()
        t.kill_all()


def log_tail(d, n=60):
    try:
        return "\n".join(d["log"].read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def imap_login(d, user=ALICE):
    c = imaplib.IMAP4("127.0.0.1", d["imap"], timeout=60)
    typ, _ = c.login(user, DEMO_PASSWORD)
    assert typ == "OK", log_tail(d)
    return c


@pytest.mark.timeout(120)
def test_davmail_imap_login_list_select(davmail):
    c = imap_login(davmail)
    try:
        typ, folders = c.list()
        assert typ == "OK", log_tail(davmail)
        names = b"\n".join(folders).decode()
        for n in ("INBOX", "Drafts", "Sent", "Trash"):
            assert n in names, names
        typ, data = c.select("INBOX")
        assert typ == "OK", log_tail(davmail)
    finally:
        c.logout()


@pytest.mark.timeout(180)
def test_davmail_smtp_send_then_imap_fetch_search_flag(davmail):
    msg = EmailMessage()
    msg["From"] = ALICE
    msg["To"] = BOB
    msg["Subject"] = "Through DavMail"
    msg.set_content("Sent with smtplib through DavMail and EWS.")
    with smtplib.SMTP("127.0.0.1", davmail["smtp"], timeout=60) as s:
        s.login(ALICE, DEMO_PASSWORD)
        s.send_message(msg)
    c = imap_login(davmail, BOB)
    try:
        typ, _ = c.select("INBOX")
        assert typ == "OK", log_tail(davmail)
        typ, data = c.search(None, "ALL")
        assert typ == "OK" and data[0].split(), log_tail(davmail)
        num = data[0].split()[-1]
        typ, fetched = c.fetch(num, "(RFC822)")
        assert typ == "OK", log_tail(davmail)
        raw = fetched[0][1]
        assert b"Through DavMail" in raw and b"smtplib through DavMail" in raw
        typ, data = c.search(None, '(SUBJECT "Through DavMail")')
        assert typ == "OK" and data[0].split(), log_tail(davmail)
        typ, _ = c.store(num, "+FLAGS", "\\Seen")
        assert typ == "OK", log_tail(davmail)
        typ, data = c.fetch(num, "(FLAGS)")
        assert b"\\Seen" in data[0], data
    finally:
        c.logout()
    c = imap_login(davmail, ALICE)
    try:
        typ, _ = c.select("Sent")
        assert typ == "OK", log_tail(davmail)
        typ, data = c.search(None, "ALL")
        assert data[0].split(), log_tail(davmail)
    finally:
        c.logout()


@pytest.mark.timeout(120)
def test_davmail_caldav_propfind(davmail):
    url = f"http://127.0.0.1:{davmail['caldav']}/users/{ALICE}/calendar/"
    r = requests.request("PROPFIND", url, auth=(ALICE, DEMO_PASSWORD), headers={"Depth": "0"},
                         data='<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:displayname/>'
                              "<d:resourcetype/></d:prop></d:propfind>", timeout=60)
    assert r.status_code == 207, (r.status_code, r.text, log_tail(davmail))


@pytest.mark.timeout(180)
def test_davmail_caldav_put_and_report(davmail):
    """CalDAV through DavMail: PUT an event (CreateItem with iCalendar MIME) and find it again
    with a calendar-query REPORT over a time range."""
    import datetime as dt

    import caldav

    base = f"http://127.0.0.1:{davmail['caldav']}/users/{ALICE}/"
    client = caldav.DAVClient(url=base, username=ALICE, password=DEMO_PASSWORD, timeout=60)
    cal = caldav.Calendar(client=client, url=base + "calendar/")
    ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tandem//interop//EN\r\nBEGIN:VEVENT\r\n"
           "UID:tandem-davmail-1@litwareinc.com\r\nDTSTAMP:20261128T100000Z\r\nDTSTART:20261210T090000Z\r\n"
           "DTEND:20261210T100000Z\r\nSUMMARY:Standup via CalDAV\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    cal.save_event(ics)
    found = cal.search(start=dt.datetime(2026, 12, 9, tzinfo=dt.timezone.utc),
                       end=dt.datetime(2026, 12, 11, tzinfo=dt.timezone.utc), event=True, expand=False)
    for e in found:
        if not e.data:
            e.load()
    summaries = [e.icalendar_component["SUMMARY"] for e in found]
    assert summaries == ["Standup via CalDAV"], (summaries, log_tail(davmail))
