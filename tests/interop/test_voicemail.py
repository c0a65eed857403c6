"""Voicemail (issue 14): call answering into the mailbox, with real clients.

SIPp callers (tests/interop/sipp/voicemail_call.xml) call Bob, who is UM-enabled with `tandem
exchange enable-um-mailbox`, when he does not answer (a SIPp UAS that rings until the Front End
CANCELs it at the ring time set with `set-um-mailbox --call-answering-rings`), when he is busy
(486 from his only endpoint) and when he is offline. The caller's audio is an RTP stream of a
1 kHz tone that SIPp plays from a pcap file this test writes (play_pcap_audio). exchangelib then
finds the message in Bob's Inbox: class IPM.Note.Microsoft.Voicemail.UM.CA, the subject with the
caller and the length, unread, and an audio/wav attachment whose dominant frequency is 1 kHz
and whose length is the call's (after the greeting). Offers the voicemail user agent cannot take
are refused with SIP's own answers (400 for malformed SDP, 488 for no common codec), and a
message recorded while the mailbox is unreachable is kept and delivered once it is back.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_voicemail.py -q
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import time
import wave
from pathlib import Path

import pytest

import test_sip as sip
from conftest import DEMO_PASSWORD, DOMAIN, Tandem, free_ports
from test_calendar_presence import account
from test_conversation_history import wait_transcripts
from test_oauth import wait_trust

HERE = Path(__file__).resolve().parent / "sipp"
CALL = str(HERE / "voicemail_call.xml")
BAD_OFFER = str(HERE / "voicemail_bad_offer.xml")
BUSY = str(HERE / "invite_uas_busy.xml")
NEVER_HANGS_UP = str(HERE / "voicemail_call_max.xml")
MWI = str(HERE / "message_summary.xml")
BOB = f"bob@{DOMAIN}"
CLASS = "IPM.Note.Microsoft.Voicemail.UM.CA"
# The default greeting (0.9 s) and the record tone (0.3 s) play before recording starts.
GREETING_S = 1.2
# voicemail_call.xml: 5.5 s from the 200 to the BYE; its pcap holds this much tone.
CALL_S = 5.5
TONE_S = 3.0


@pytest.fixture
def peers(tmp_path):
    p = sip.Peers(tmp_path / "peers")
    yield p
    p.kill_all()


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


# ---------------------------------------------------------------- audio


def ulaw(sample: int) -> int:
    """G.711 µ-law of a 16-bit sample (ITU-T G.711, the classic segment encoder)."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    s = min(abs(sample), clip) + bias
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not (s & mask):
        exponent -= 1
        mask >>= 1
    mantissa = (s >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def write_tone_pcap(path: Path, hz: float = 1000.0, seconds: float = TONE_S):
    """An Ethernet/IPv4/UDP pcap of RTP (PCMU, 20 ms packets) carrying a tone; SIPp rewrites the
    addresses and keeps the timing."""
    out = io.BytesIO()
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    frames = int(seconds * 50)
    for n in range(frames):
        payload = bytes(ulaw(int(16000 * math.sin(2 * math.pi * hz * (n * 160 + i) / 8000))) for i in range(160))
        rtp = struct.pack("!BBHII", 0x80, 0x80 if n == 0 else 0, n, n * 160, 0x1234ABCD) + payload
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
        ip_hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n, 0, 64, 17, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
        frame = b"\x00" * 12 + b"\x08\x00" + ip_hdr + udp
        t = n * 0.02
        out.write(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(frame), len(frame)))
        out.write(frame)
    path.write_bytes(out.getvalue())


def goertzel(samples: list[int], hz: float) -> float:
    w = 2 * math.pi * hz / 8000
    c = 2 * math.cos(w)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + c * s1 - s2, s1
    return s1 * s1 + s2 * s2 - c * s1 * s2


def dominant_frequency(samples: list[int]) -> float:
    """The strongest of 50 Hz steps from 100 Hz to 3.9 kHz over the loudest second."""
    loud = max(range(0, max(1, len(samples) - 8000), 800),
               key=lambda i: sum(abs(x) for x in samples[i:i + 8000:7]))
    window = samples[loud:loud + 8000]
    return max(range(100, 3950, 50), key=lambda f: goertzel(window, f))


def read_wav(data: bytes) -> list[int]:
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 8000, 2), w.getparams()
        frames = w.readframes(w.getnframes())
    return list(struct.unpack(f"<{len(frames) // 2}h", frames))


# ---------------------------------------------------------------- deployment


def deploy(make_tandem, name: str, extra: str = "") -> tuple[Tandem, str]:
    # One ring a second, so two rings are 2 s of ringing (5 s in a real deployment).
    t = make_tandem(name, frontend_extra="voicemail_seconds_per_ring = 1\nmedia_port_min = 41000\n"
                                         f"media_port_max = 41999\n{extra}")
    t.start()
    wait_trust(t)
    st = t.status()
    os.environ["REQUESTS_CA_BUNDLE"] = st["ca_certificate"]
    return t, st["mailbox"]["ews_url"]


def um_enable(t: Tandem, user: str = "bob", rings: int = 2):
    ok(t.run("exchange", "enable-um-mailbox", "--identity", user, "--pin-stdin", input="246810\n", *t.location))
    ok(t.run("exchange", "set-um-mailbox", "--identity", user, "--call-answering-rings", str(rings), *t.location))


def alice_calls(peers: sip.Peers, t: Tandem, name: str, target: str = "bob") -> sip.SippRun:
    write_tone_pcap(peers.dir / "tone1k.pcap")
    rows = sip.write_users(peers.dir / f"{name}.csv", [("alice", DEMO_PASSWORD, target)])
    run = peers.sipp(CALL, sip.sip_endpoint(t), name, users=rows, calls=1, budget=40)
    sip.assert_sipp_ok(run, 1, t)
    return run


def voicemails(ews: str, address: str = BOB) -> list:
    acc = account(ews, address)
    ids = list(acc.inbox.filter(item_class=CLASS).values_list("id", "changekey"))
    return list(acc.fetch(ids=ids)) if ids else []


def wait_voicemails(t: Tandem, ews: str, count: int, budget: float = 30) -> list:
    deadline = time.monotonic() + budget
    while True:
        items = voicemails(ews)
        if len(items) >= count or time.monotonic() > deadline:
            assert len(items) == count, f"expected {count} voicemail(s) in Bob's Inbox, found {len(items)}\n{t.logs()[-6000:]}"
            return items
        time.sleep(0.5)


def check_message(item, caller: str = "Alice Anderson"):
    """The item as Exchange UM left it, and its recording: the caller's 1 kHz tone, as long as
    the call after the greeting."""
    assert item.item_class == CLASS
    assert item.is_read is False
    assert item.subject.startswith(f"Voice Mail from {caller} ("), item.subject
    [att] = item.attachments
    assert att.content_type == "audio/wav" and att.name.endswith(".wav"), (att.content_type, att.name)
    samples = read_wav(att.content)
    seconds = len(samples) / 8000
    expected = CALL_S - GREETING_S
    assert abs(seconds - expected) < 0.8, f"{seconds:.2f} s recorded, the call after the greeting was {expected:.1f} s"
    assert item.subject == f"Voice Mail from {caller} ({round(seconds)} seconds)", item.subject
    f = dominant_frequency(samples)
    assert 950 <= f <= 1050, f"the recording's dominant frequency is {f} Hz, not the caller's 1 kHz"
    # The tone fills about as much of the recording as the caller sent.
    loud = sum(1 for i in range(0, len(samples) - 160, 160) if max(map(abs, samples[i:i + 160])) > 4000) * 0.02
    assert abs(loud - TONE_S) < 0.5, f"{loud:.2f} s of tone recorded, {TONE_S} s sent"
    body = str(item.body)
    assert "alice" in body.lower() and "seconds long" in body, body


# ---------------------------------------------------------------- tests


@pytest.mark.timeout(150)
def test_an_unanswered_call_is_recorded_into_the_inbox(make_tandem, peers):
    t, ews = deploy(make_tandem, "vm-no-answer")
    um_enable(t, rings=2)
    remote = sip.sip_endpoint(t)
    bob_port = free_ports(1)[0]
    sip.register(peers, remote, sip.write_users(peers.dir / "bob.csv", [("bob", DEMO_PASSWORD, "bob")]),
                 bob_port, "reg-bob", 1)
    # Bob's phone rings and nobody picks up: at the ring time the Front End CANCELs it.
    rings = peers.sipp("cancel_uas.xml", remote, "bob-rings", port=bob_port, calls=1, budget=30, background=True)
    time.sleep(0.5)
    started = time.monotonic()
    call = alice_calls(peers, t, "alice-calls-bob")
    rings.wait(15)
    sip.assert_sipp_ok(rings, 1, t)
    msgs = sip.sip_messages(call.text(call.messages))
    got = [sip.first_line(m) for m in msgs if m.startswith("SIP/2.0")]
    assert any(" 180 " in g for g in got), f"the caller heard Bob's phone ring first: {got}"
    assert time.monotonic() - started >= 2 + CALL_S, "two rings, then the message"
    [item] = wait_voicemails(t, ews, 1)
    check_message(item)
    ok_200 = next(m for m in msgs if m.startswith("SIP/2.0 200") and "application/sdp" in m)
    assert "m=audio 41" in ok_200 and "RTP/AVP 0 101" in ok_200, f"the SDP answer, PCMU from the media range:\n{ok_200}"


@pytest.mark.timeout(180)
def test_offline_and_busy_callees_go_to_voicemail(make_tandem, peers):
    t, ews = deploy(make_tandem, "vm-busy-offline")
    um_enable(t, rings=4)
    remote = sip.sip_endpoint(t)
    # Offline: no endpoint; voicemail answers at once.
    started = time.monotonic()
    alice_calls(peers, t, "alice-calls-offline-bob")
    assert time.monotonic() - started < CALL_S + 3, "no ringing for a callee with no endpoint"
    [first] = wait_voicemails(t, ews, 1)
    check_message(first)
    # Busy: Bob's only endpoint answers 486.
    bob_port = free_ports(1)[0]
    sip.register(peers, remote, sip.write_users(peers.dir / "bob.csv", [("bob", DEMO_PASSWORD, "bob")]),
                 bob_port, "reg-bob", 1)
    busy = peers.sipp(BUSY, remote, "bob-busy", port=bob_port, calls=1, budget=30, background=True)
    time.sleep(0.5)
    started = time.monotonic()
    alice_calls(peers, t, "alice-calls-busy-bob")
    assert time.monotonic() - started < CALL_S + 3, "busy goes to voicemail at once, not after the rings"
    busy.wait(10)
    sip.assert_sipp_ok(busy, 1, t)
    items = wait_voicemails(t, ews, 2)
    for item in items:
        check_message(item)
    # Conversation history: for Bob each was a missed call (as Skype for Business shows it
    # beside the voicemail), not a call he answered.
    missed = wait_transcripts(t, ews, BOB, 30, count=2, folder="conversation_history")
    assert {m.item_class for m in missed} == {"IPM.Note.Microsoft.Missed.Voice"}, [m.item_class for m in missed]
    reasons = sorted(str(m.body).split("Missed: ")[1].split("<")[0] for m in missed)
    assert reasons == ["busy", "unavailable"], reasons
    # Disabled again: no longer UM-enabled, and the next call is not answered by voicemail.
    ok(t.run("exchange", "disable-um-mailbox", "--identity", "bob", *t.location))
    r = t.run("exchange", "get-um-mailbox", "--identity", "bob", *t.location)
    assert r.returncode != 0 and "not UM-enabled" in r.stderr, (r.returncode, r.stdout, r.stderr)
    busy = peers.sipp(BUSY, remote, "bob-busy-again", port=bob_port, calls=1, budget=30, background=True)
    time.sleep(0.5)
    rows = sip.write_users(peers.dir / "again.csv", [("alice", DEMO_PASSWORD, "bob")])
    run = peers.sipp(CALL, remote, "alice-calls-busy-bob-again", users=rows, calls=1, budget=15)
    busy.wait(10)
    assert run.successful == 0, "the busy callee's 486 reaches the caller"
    assert any(m.startswith("SIP/2.0 486") for m in sip.sip_messages(run.text(run.messages))), run.report()
    assert len(voicemails(ews)) == 2


@pytest.mark.timeout(120)
def test_offers_voicemail_cannot_take_are_refused(make_tandem, peers):
    """Malformed SDP gets 400 and an offer without PCMU or PCMA 488; and `tandem test
    ex-um-connectivity` (Test-CsExUMConnectivity) passes every hop for Bob, leaving his Inbox
    as it was, and names the fix for a user who is not UM-enabled."""
    t, ews = deploy(make_tandem, "vm-bad-offers")
    um_enable(t)
    remote = sip.sip_endpoint(t)
    rows = sip.write_users(peers.dir / "alice.csv", [("alice", DEMO_PASSWORD, "bob")])
    for mline, status in (("m=audio 6000 RTP/AVP 18", 488), ("m=audio port RTP/AVP 0", 400),
                          ("m=audio 6000 RTP/AVP 9\r\na=rtpmap:9 G722/8000", 488)):
        name = f"offer-{status}-{len(mline)}"
        run = peers.sipp(BAD_OFFER, remote, name, "-key", "mline", mline, users=rows, calls=1, budget=20)
        sip.assert_sipp_ok(run, 1, t)
        finals = [sip.first_line(m) for m in sip.sip_messages(run.text(run.messages))
                  if m.startswith("SIP/2.0") and not m.startswith(("SIP/2.0 100", "SIP/2.0 407"))]
        assert finals and finals[-1].startswith(f"SIP/2.0 {status} "), f"{mline!r}: {finals}"
    assert voicemails(ews) == [], "nothing recorded from a refused offer"

    r = ok(t.run("test", "ex-um-connectivity", "--sip-uri", f"sip:bob@{DOMAIN}", "--json", *t.location))
    report = json.loads(r.stdout)
    assert report["ok"] and [h["hop"] for h in report["hops"]] == [
        "UM mailbox", "Media ports", "Autodiscover", "EWS write", "EWS read", "EWS delete"], report
    assert all(h["ok"] for h in report["hops"]), report
    assert voicemails(ews) == [], "the test voicemail was removed"
    r = t.run("test", "ex-um-connectivity", "--sip-uri", f"sip:carol@{DOMAIN}", *t.location)
    assert r.returncode != 0 and "enable-um-mailbox" in r.stdout, (r.returncode, r.stdout, r.stderr)


def wait_log(t: Tandem, needle: str, count: int, budget: float = 20):
    deadline = time.monotonic() + budget
    while t.logs().count(needle) < count and time.monotonic() < deadline:
        time.sleep(0.3)
    assert t.logs().count(needle) >= count, f"{needle!r} not logged {count} time(s)\n{t.logs()[-4000:]}"


@pytest.mark.timeout(180)
def test_a_message_left_while_the_mailbox_is_unreachable_is_delivered_later(make_tandem, peers):
    t, ews = deploy(make_tandem, "vm-spool")
    um_enable(t)
    oauth = json.loads(ok(t.run("cs", "get-oauth-configuration", "--json", *t.location)).stdout)
    good = oauth["ExchangeAutodiscoverUrl"]
    # Nothing listens on port 9 here: Autodiscover, the first hop, fails.
    bad = f"https://autodiscover.{DOMAIN}:9/autodiscover/autodiscover.svc"
    ok(t.run("cs", "set-oauth-configuration", "--exchange-autodiscover-url", bad, *t.location))
    alice_calls(peers, t, "alice-calls-unreachable")
    wait_log(t, "voicemail kept in the spool", 2)
    assert voicemails(ews) == []
    # The mailbox is back: the spool delivers it on its next attempt.
    ok(t.run("cs", "set-oauth-configuration", "--exchange-autodiscover-url", good, *t.location))
    [item] = wait_voicemails(t, ews, 1, budget=40)
    check_message(item)

    # Again, and this time the Front End stops with the message still spooled: it is on disk,
    # and the next start delivers it.
    ok(t.run("cs", "set-oauth-configuration", "--exchange-autodiscover-url", bad, *t.location))
    alice_calls(peers, t, "alice-calls-unreachable-again")
    wait_log(t, "voicemail kept in the spool", 3)
    t.stop()
    ok(t.run("cs", "set-oauth-configuration", "--exchange-autodiscover-url", good, *t.location))
    t.start()
    items = wait_voicemails(t, ews, 2, budget=40)
    for item in items:
        check_message(item)
    time.sleep(3)
    assert len(voicemails(ews)) == 2, "each message delivered once"


def notifies(run: sip.SippRun) -> list[str]:
    return [m for m in sip.sip_messages(run.text(run.messages)) if m.startswith("NOTIFY ")]


def wait_notifies(run: sip.SippRun, count: int, t: Tandem, budget: float = 30) -> list[str]:
    deadline = time.monotonic() + budget
    while len(notifies(run)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    got = notifies(run)
    assert len(got) >= count, f"{len(got)} NOTIFY(s), expected {count}\n{run.report()}\n{t.logs()[-4000:]}"
    return got


@pytest.mark.timeout(150)
def test_message_waiting_follows_the_inbox(make_tandem, peers):
    """A phone subscribed to Bob's message-summary (SIPp) hears Messages-Waiting: no, then yes
    with Voice-Message: 1/0 when a voicemail lands in his Inbox, then no with 0/1 once
    exchangelib marked it read; the EWS streaming subscription on his Inbox drives it."""
    t, ews = deploy(make_tandem, "vm-mwi")
    um_enable(t)
    remote = sip.sip_endpoint(t)
    rows = sip.write_users(peers.dir / "bob-mwi.csv", [("bob", DEMO_PASSWORD, "-")])
    phone = peers.sipp(MWI, remote, "bob-mwi", users=rows, calls=1, budget=90, background=True)
    [first] = wait_notifies(phone, 1, t)
    assert "Event: message-summary" in first and "application/simple-message-summary" in first, first
    assert "Messages-Waiting: no" in first, first
    # Alice leaves a message (Bob is offline).
    alice_calls(peers, t, "alice-leaves-message")
    hung_up = time.monotonic()
    got = wait_notifies(phone, 2, t)
    lit = time.monotonic() - hung_up
    assert "Messages-Waiting: yes" in got[1] and "Voice-Message: 1/0" in got[1], got[1]
    [item] = wait_voicemails(t, ews, 1)
    # Read in Outlook's stead: exchangelib marks it read.
    item.is_read = True
    marked = time.monotonic()
    item.save(update_fields=["is_read"])
    rc = phone.wait(30)
    off = time.monotonic() - marked
    sip.assert_sipp_ok(phone, 1, t)
    assert rc == 0, phone.report()
    last = notifies(phone)[-1]
    assert "Messages-Waiting: no" in last and "Voice-Message: 0/1" in last, last
    print(f"message waiting: hang-up to NOTIFY yes {lit:.3f} s (includes SIPp's poll); read to NOTIFY no {off:.3f} s")
    # Pushed by the mailbox's streaming notification, not polled; generous for a loaded machine.
    assert off < 5, f"marking the voicemail read reached the phone after {off:.1f} s"


def write_wav(path: Path, samples: list[int], rate: int = 8000, channels: int = 1):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))


@pytest.mark.timeout(150)
def test_an_uploaded_greeting_plays_and_the_commands_refuse_bad_input(make_tandem, peers, tmp_path):
    """set-um-mailbox-greeting stores a 3 s greeting: the caller's first second of tone falls
    into it, so the recording is that much shorter (what the caller heard first was the
    greeting). The UM commands refuse what their cmdlets refuse, with exit code 2."""
    t, ews = deploy(make_tandem, "vm-greeting")
    um_enable(t)
    greeting = tmp_path / "greeting.wav"
    write_wav(greeting, [int(8000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(3 * 8000)])
    r = ok(t.run("exchange", "set-um-mailbox-greeting", "--identity", "bob", "--file", str(greeting), *t.location))
    assert "3.0 s" in r.stdout, r.stdout
    shown = json.loads(ok(t.run("exchange", "get-um-mailbox", "--identity", "bob", "--json", *t.location)).stdout)
    assert shown[0]["Greeting"] == "Custom" and shown[0]["CallAnsweringRings"] == 2 and shown[0]["PinSet"], shown
    alice_calls(peers, t, "alice-hears-the-greeting")
    [item] = wait_voicemails(t, ews, 1)
    samples = read_wav(item.attachments[0].content)
    seconds = len(samples) / 8000
    expected = CALL_S - 3.0 - 0.3
    assert abs(seconds - expected) < 0.8, f"{seconds:.2f} s recorded after a 3 s greeting; expected {expected:.1f} s"
    assert 950 <= dominant_frequency(samples) <= 1050

    stereo = tmp_path / "stereo.wav"
    write_wav(stereo, [1000, -1000] * 8000, channels=2)
    for args, needle in (
        (["set-um-mailbox-greeting", "--identity", "bob", "--file", str(stereo)], "mono"),
        (["set-um-mailbox-greeting", "--identity", "bob", "--file", str(tmp_path / "missing.wav")], "cannot open"),
        (["set-um-mailbox", "--identity", "bob", "--call-answering-rings", "0"], "from 1 to 24"),
        (["set-um-mailbox", "--identity", "bob"], "nothing to set"),
        (["enable-um-mailbox", "--identity", "bob"], "already UM-enabled"),
        (["set-um-mailbox", "--identity", "carol", "--call-answering-rings", "3"], "not UM-enabled"),
    ):
        r = t.run("exchange", *args, *t.location)
        assert r.returncode == 2 and needle in r.stderr, (args, r.returncode, r.stdout, r.stderr)
    r = t.run("exchange", "enable-um-mailbox", "--identity", "carol", "--pin-stdin", input="12ab56\n", *t.location)
    assert r.returncode == 2 and "digits" in r.stderr, (r.returncode, r.stderr)
    ok(t.run("exchange", "set-um-mailbox-greeting", "--identity", "bob", "--default", *t.location))
    shown = json.loads(ok(t.run("exchange", "get-um-mailbox", "--json", *t.location)).stdout)
    assert [(s["Identity"], s["Greeting"]) for s in shown] == [(f"sip:bob@{DOMAIN}", "Default")], shown


@pytest.mark.timeout(120)
def test_a_caller_who_never_hangs_up_is_cut_off_at_the_maximum(make_tandem, peers):
    """frontend.voicemail_max_seconds = 3: the voicemail user agent sends its own BYE after
    three seconds of recording, and the three seconds are in the Inbox."""
    t, ews = deploy(make_tandem, "vm-max", extra="voicemail_max_seconds = 3")
    um_enable(t)
    write_tone_pcap(peers.dir / "tone1k.pcap", seconds=8)
    rows = sip.write_users(peers.dir / "alice.csv", [("alice", DEMO_PASSWORD, "bob")])
    run = peers.sipp(NEVER_HANGS_UP, sip.sip_endpoint(t), "alice-never-hangs-up", users=rows, calls=1, budget=30)
    sip.assert_sipp_ok(run, 1, t)
    [item] = wait_voicemails(t, ews, 1)
    samples = read_wav(item.attachments[0].content)
    assert abs(len(samples) / 8000 - 3.0) < 0.05, len(samples) / 8000
    assert item.subject == "Voice Mail from Alice Anderson (3 seconds)", item.subject
    assert 950 <= dominant_frequency(samples) <= 1050


def ulaw_decode(b: int) -> int:
    b = ~b & 0xFF
    t = ((b & 0x0F) << 3) + 0x84
    t <<= (b & 0x70) >> 4
    return (0x84 - t) if b & 0x80 else (t - 0x84)


class RtpPeer:
    """The calling-in phone's media: a UDP socket at the SDP's port that keeps the PCMU audio
    it hears and, once the voicemail user agent spoke first (its PIN prompt), sends `digits`
    as RFC 4733 telephone events back to where that audio came from (symmetric RTP)."""

    CODES = {**{str(i): i for i in range(10)}, "*": 10, "#": 11}

    def __init__(self, digits: str):
        import socket
        import threading

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.digits = digits
        self.heard: list[int] = []
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def send_digits(self, to):
        seq, ts = 100, 8000
        for d in self.digits:
            code = self.CODES[d]
            for n in range(6):
                end = n >= 3
                payload = struct.pack("!BBH", code, (0x80 if end else 0) | 10, 400 + 160 * n)
                self.sock.sendto(struct.pack("!BBHII", 0x80, 101 | (0x80 if n == 0 else 0), seq, ts, 0xBEEF) + payload, to)
                seq += 1
                time.sleep(0.02)
            ts += 8000
            time.sleep(0.1)

    def run(self):
        sent = False
        first = addr = None
        while self.running:
            try:
                data, addr = self.sock.recvfrom(2048)
                if len(data) > 12 and data[1] & 0x7F == 0:
                    self.heard.extend(ulaw_decode(x) for x in data[12:])
                    first = first or time.monotonic()
            except OSError:
                pass
            if not sent and first and time.monotonic() - first > 0.6:
                sent = True
                self.send_digits(addr)

    def stop(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()


@pytest.mark.timeout(150)
def test_bob_calls_in_with_his_pin_and_hears_the_message(make_tandem, peers):
    """Calling in: Bob calls sip:voicemail@litwareinc.com (SIPp; the media is the test's own
    RTP endpoint), enters his PIN as telephone events, hears one beep (one new message) and the
    message, whose audio carries the caller's 1 kHz tone; choosing nothing marks it read, which
    exchangelib sees."""
    t, ews = deploy(make_tandem, "vm-access")
    um_enable(t)
    alice_calls(peers, t, "alice-leaves-one")
    [item] = wait_voicemails(t, ews, 1)
    assert item.is_read is False
    phone = RtpPeer("246810#")
    try:
        rows = sip.write_users(peers.dir / "bob-in.csv", [("bob", DEMO_PASSWORD, "-")])
        run = peers.sipp(str(HERE / "voicemail_access.xml"), sip.sip_endpoint(t), "bob-calls-in",
                         "-key", "rtp_port", str(phone.port), users=rows, calls=1, budget=60)
        sip.assert_sipp_ok(run, 1, t)
    finally:
        phone.stop()
    heard = phone.heard
    assert len(heard) > 8000 * 4, f"{len(heard) / 8000:.1f} s heard\n{t.logs()[-3000:]}"
    f = dominant_frequency(heard)
    assert 950 <= f <= 1050, f"the loudest second of what Bob heard is at {f} Hz, not the recorded 1 kHz"
    assert "voicemail access" in t.logs() and "wrong PIN" not in t.logs(), t.logs()[-3000:]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not voicemails(ews)[0].is_read:
        time.sleep(0.3)
    assert voicemails(ews)[0].is_read is True, "played and not kept new: marked read in the mailbox"
    # A second message; this time Bob presses 7 after it: deleted (to Deleted Items).
    alice_calls(peers, t, "alice-leaves-another")
    wait_voicemails(t, ews, 2)
    phone = RtpPeer("246810#7")
    try:
        run = peers.sipp(str(HERE / "voicemail_access.xml"), sip.sip_endpoint(t), "bob-calls-in-again",
                         "-key", "rtp_port", str(phone.port), users=rows, calls=1, budget=60)
        sip.assert_sipp_ok(run, 1, t)
    finally:
        phone.stop()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(voicemails(ews)) != 1:
        time.sleep(0.3)
    [left] = voicemails(ews)
    assert left.is_read is True, "the read one stays; the new one was deleted"
    deleted = account(ews, BOB).trash.filter(item_class=CLASS).count()
    assert deleted == 1, f"{deleted} voicemail(s) in Deleted Items"
