"""High-resolution photos (issue 12): `tandem exchange set-user-photo` (Set-UserPhoto) stores a
picture in the mailbox in every GetUserPhoto size; curl fetches each size over the REST form with
its ETag and gets 304 for If-None-Match; the SOAP form (raw SOAP with requests: exchangelib has
no GetUserPhoto) returns the same bytes; Pillow decodes every size at its dimensions; bad
pictures are refused by the command with what failed; Remove-UserPhoto gives 404; and a SIPp
watcher sees the photo's URL as RPID status-icon in the presence NOTIFY the Front End sends,
which it learns of only through EWS with S2S tokens.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_photos.py -q
"""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from PIL import Image

from conftest import DEMO_PASSWORD, DOMAIN, Tandem
from test_oauth import our_token, wait_trust
from test_sip import Peers, assert_sipp_ok, first_line, sip_endpoint, sip_messages, write_users

M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
S = "http://schemas.xmlsoap.org/soap/envelope/"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
CAROL = f"carol@{DOMAIN}"
SIZES = [48, 64, 96, 120, 240, 360, 432, 504, 648]


@pytest.fixture(scope="module")
def deployment(tandem_bin, tmp_path_factory):
    t = Tandem(tandem_bin, tmp_path_factory.mktemp("photos"))
    t.start()
    wait_trust(t)
    st = t.status()
    yield {"t": t, "ews": st["mailbox"]["ews_url"], "ca": st["ca_certificate"], "dir": t.root}
    t.kill_all()


def picture(path: Path, width: int, height: int, fmt: str) -> Path:
    """A picture Pillow writes: a gradient with a mark, so resizing has something to do."""
    img = Image.new("RGB", (width, height))
    img.putdata([((x * 255) // width, (y * 255) // height, 90) for y in range(height) for x in range(width)])
    img.save(path, fmt)
    return path


def set_photo(d, identity: str, path: Path, *flags: str) -> subprocess.CompletedProcess:
    t: Tandem = d["t"]
    return t.run("exchange", "set-user-photo", "--identity", identity, "--picture-data", str(path), *flags,
                 *t.location)


def rest_url(d, email: str, size: str) -> str:
    return f"{d['ews']}/s/GetUserPhoto?email={email}&size={size}"


def curl(d, url: str, user: str = ALICE, *extra: str) -> tuple[int, dict, bytes]:
    """GET with curl: (status, headers in lower case, body)."""
    out = d["dir"] / "curl.body"
    r = subprocess.run(
        ["curl", "-sS", "--cacert", d["ca"], "-u", f"{user}:{DEMO_PASSWORD}", "-D", "-", "-o", str(out),
         "-w", "\n%{http_code}", *extra, url],
        capture_output=True, text=True, timeout=30,
    )
    assert r.returncode == 0, r.stderr
    head, _, code = r.stdout.rpartition("\n")
    headers = {}
    for line in head.splitlines()[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = out.read_bytes() if out.exists() else b""
    out.unlink(missing_ok=True)
    return int(code), headers, body


def soap_photo(d, email: str, size: str, user: str = ALICE, headers: dict | None = None) -> requests.Response:
    env = (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}" xmlns:m="{M}" xmlns:t="{T}">'
           '<s:Header><t:RequestServerVersion Version="Exchange2013"/></s:Header><s:Body>'
           f"<m:GetUserPhoto><m:Email>{email}</m:Email><m:SizeRequested>{size}</m:SizeRequested></m:GetUserPhoto>"
           "</s:Body></s:Envelope>")
    h = {"Content-Type": "text/xml; charset=utf-8",
         "SOAPAction": f'"{M}/GetUserPhoto"'} | (headers or {})
    return requests.post(d["ews"], data=env.encode(), headers=h, auth=(user, DEMO_PASSWORD), verify=d["ca"],
                         timeout=30)


def photo_response(r: requests.Response) -> ET.Element:
    assert r.status_code == 200, r.text
    resp = ET.fromstring(r.text).find(f"{{{S}}}Body/{{{M}}}GetUserPhotoResponse")
    assert resp is not None, r.text
    return resp


def decoded(jpeg: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(jpeg))
    assert img.format == "JPEG"
    img.load()
    return img


def test_every_size_over_rest_with_etag_and_304(deployment, tmp_path):
    d = deployment
    src = picture(tmp_path / "alice.jpg", 900, 700, "JPEG")
    r = set_photo(d, "alice", src)
    assert r.returncode == 0, r.stderr
    assert "9 sizes up to HR648x648" in r.stdout, r.stdout
    etags = set()
    for n in SIZES:
        code, headers, body = curl(d, rest_url(d, ALICE, f"HR{n}x{n}"), BOB)
        assert code == 200, (n, headers)
        assert headers["content-type"] == "image/jpeg"
        assert decoded(body).size == (n, n)
        etag = headers["etag"]
        etags.add(etag)
        code, headers, body = curl(d, rest_url(d, ALICE, f"HR{n}x{n}"), BOB, "-H", f"If-None-Match: {etag}")
        assert (code, body) == (304, b""), n
        assert headers["etag"] == etag
    assert len(etags) == 1, "every size of one photo carries its ETag"
    # A path and size code in another case are the same resource, as IIS and Exchange answer.
    code, _, body = curl(d, rest_url(d, ALICE, "HR96X96").replace("/EWS/Exchange.asmx/s/", "/ews/exchange.asmx/s/"))
    assert code == 200 and decoded(body).size == (96, 96)
    # Authenticated as EWS is: no credentials → 401; the Front End's S2S token → the photo.
    r = requests.get(rest_url(d, ALICE, "HR48x48"), verify=d["ca"], timeout=10)
    assert r.status_code == 401
    token = our_token(d["t"], BOB)
    r = requests.get(rest_url(d, ALICE, "HR48x48"), headers={"Authorization": f"Bearer {token}"}, verify=d["ca"],
                     timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", r.text
    # A size that is not a UserPhotoSizeType is a bad request.
    assert curl(d, rest_url(d, ALICE, "HR50x50"))[0] == 400


def test_a_smaller_picture_is_never_upscaled(deployment, tmp_path):
    d = deployment
    assert set_photo(d, "bob", picture(tmp_path / "bob.png", 300, 200, "PNG")).returncode == 0
    largest = decoded(curl(d, rest_url(d, BOB, "HR648x648"))[2])
    assert largest.size == (120, 120), "above the picture's own size: the largest kept, as Exchange answers"
    assert decoded(curl(d, rest_url(d, BOB, "HR96x96"))[2]).size == (96, 96)


def test_soap_get_user_photo_returns_the_same_bytes(deployment, tmp_path):
    d = deployment
    assert set_photo(d, "alice", picture(tmp_path / "alice2.jpg", 700, 700, "JPEG")).returncode == 0
    for n in (48, 240, 648):
        _, headers, rest = curl(d, rest_url(d, ALICE, f"HR{n}x{n}"), BOB)
        r = soap_photo(d, ALICE, f"HR{n}x{n}", BOB)
        resp = photo_response(r)
        assert resp.get("ResponseClass") == "Success"
        assert [c.tag.split("}")[1] for c in resp] == ["ResponseCode", "HasChanged", "PictureData"]
        assert resp.find(f"{{{M}}}ResponseCode").text == "NoError"
        assert resp.find(f"{{{M}}}HasChanged").text == "true"
        assert base64.b64decode(resp.find(f"{{{M}}}PictureData").text) == rest
        assert r.headers["ETag"] == headers["etag"]
        # The caller holds this photo: HasChanged false and no picture.
        again = photo_response(soap_photo(d, ALICE, f"HR{n}x{n}", BOB, {"If-None-Match": r.headers["ETag"]}))
        assert again.find(f"{{{M}}}HasChanged").text == "false"
        assert again.find(f"{{{M}}}PictureData") is None
    # An address outside the directory answers as a user without a photo does.
    for who in (f"nobody@{DOMAIN}", CAROL):
        resp = photo_response(soap_photo(d, who, "HR96x96"))
        assert resp.get("ResponseClass") == "Error"
        assert resp.find(f"{{{M}}}ResponseCode").text == "ErrorItemNotFound"


def test_bad_pictures_are_refused_and_nothing_changes(deployment, tmp_path):
    d = deployment
    t: Tandem = d["t"]
    assert set_photo(d, "carol", picture(tmp_path / "carol.jpg", 400, 400, "JPEG")).returncode == 0
    _, before, body_before = curl(d, rest_url(d, CAROL, "HR240x240"))
    text = tmp_path / "notes.txt"
    text.write_text("this is not a picture\n")
    jpeg = (tmp_path / "full.jpg")
    picture(jpeg, 640, 480, "JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size * 2 // 3])
    oversized = tmp_path / "huge.jpg"
    with open(oversized, "wb") as f:
        f.write(jpeg.read_bytes())
        f.truncate(20 * 1024 * 1024 + 1)
    cases = [
        (text, "not a JPEG or PNG picture"),
        (truncated, "truncated"),
        (oversized, "more than the 20971520 bytes allowed"),
    ]
    for path, says in cases:
        r = set_photo(d, "carol", path)
        assert r.returncode == 2, (path, r.stdout, r.stderr)
        assert says in r.stderr and str(path) in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    _, after, body_after = curl(d, rest_url(d, CAROL, "HR240x240"))
    assert after["etag"] == before["etag"] and body_after == body_before
    r = t.run("exchange", "set-user-photo", "--identity", "nobody", "--picture-data", str(jpeg), *t.location)
    assert r.returncode == 2 and "nobody" in r.stderr


def test_a_preview_is_served_only_to_its_owner_until_saved(deployment, tmp_path):
    d = deployment
    t: Tandem = d["t"]
    _, saved, _ = curl(d, rest_url(d, CAROL, "HR96x96"), ALICE)
    assert set_photo(d, "carol", picture(tmp_path / "preview.png", 500, 500, "PNG"), "--preview").returncode == 0
    _, to_owner, _ = curl(d, rest_url(d, CAROL, "HR96x96"), CAROL)
    _, to_others, _ = curl(d, rest_url(d, CAROL, "HR96x96"), ALICE)
    assert to_owner["etag"] != saved["etag"] and to_others["etag"] == saved["etag"]
    r = t.run("exchange", "set-user-photo", "--identity", "carol", "--save", *t.location)
    assert r.returncode == 0, r.stderr
    _, now, _ = curl(d, rest_url(d, CAROL, "HR96x96"), ALICE)
    assert now["etag"] == to_owner["etag"]
    r = t.run("exchange", "set-user-photo", "--identity", "carol", "--cancel", *t.location)
    assert r.returncode == 2 and "no preview" in r.stderr


def test_remove_user_photo_gives_404(deployment, tmp_path):
    d = deployment
    t: Tandem = d["t"]
    assert set_photo(d, "carol", picture(tmp_path / "c.jpg", 100, 100, "JPEG")).returncode == 0
    assert curl(d, rest_url(d, CAROL, "HR96x96"))[0] == 200
    r = t.run("exchange", "remove-user-photo", "--identity", "carol", *t.location)
    assert r.returncode == 0, r.stderr
    gone = curl(d, rest_url(d, CAROL, "HR96x96"))
    unknown = curl(d, rest_url(d, f"nobody@{DOMAIN}", "HR96x96"))
    assert gone[0] == 404 and unknown[0] == 404 and gone[2] == unknown[2], "no user enumeration"
    r = t.run("exchange", "remove-user-photo", "--identity", "carol", *t.location)
    assert r.returncode == 2 and "no photo" in r.stderr


def status_icons(text: str) -> list[str]:
    return re.findall(r"<rpid:status-icon>([^<]*)</rpid:status-icon>", text)


def watch_bob(d, peers: Peers, name: str) -> str:
    """One SIPp subscription of Alice to Bob; the text of its NOTIFYs."""
    t: Tandem = d["t"]
    run = peers.sipp("subscribe_notify.xml", sip_endpoint(t), name, "-aa",
                     users=write_users(peers.dir / f"{name}.csv", [("alice", DEMO_PASSWORD, "bob")]),
                     calls=1, budget=20)
    assert_sipp_ok(run, 1, t)
    return "\n".join(m for m in sip_messages(run.text(run.messages)) if first_line(m).startswith("NOTIFY "))


@pytest.mark.timeout(150)
def test_presence_points_at_the_photo(deployment, tmp_path):
    d = deployment
    t: Tandem = d["t"]
    assert set_photo(d, "bob", picture(tmp_path / "bob.jpg", 600, 600, "JPEG")).returncode == 0
    peers = Peers(tmp_path / "peers")
    try:
        # The first subscription to Bob starts the Front End's watch of his mailbox (EWS with S2S
        # tokens); the photo is in the NOTIFYs once the watch has asked GetUserPhoto.
        deadline = time.monotonic() + 20
        icons: list[str] = []
        n = 0
        while not icons and time.monotonic() < deadline:
            n += 1
            icons = status_icons(watch_bob(d, peers, f"watch{n}"))
            if not icons:
                time.sleep(0.5)
        assert icons, f"no status-icon in the NOTIFYs to Bob's watcher\n{t.logs()[-4000:]}"
        url = icons[0].replace("&amp;", "&")
        assert url == rest_url(d, BOB, "HR96x96"), url
        code, headers, body = curl(d, url, ALICE)
        assert code == 200 and decoded(body).size == (96, 96)

        # Removed: the watch learns it at its next check (the policy's WebServicePollInterval).
        ok = t.run("cs", "set-client-policy", "--web-service-poll-interval", "00:00:01", *t.location)
        assert ok.returncode == 0, ok.stderr
        assert t.run("exchange", "remove-user-photo", "--identity", "bob", *t.location).returncode == 0
        deadline = time.monotonic() + 20
        while icons and time.monotonic() < deadline:
            n += 1
            time.sleep(0.5)
            icons = status_icons(watch_bob(d, peers, f"watch{n}"))
        assert not icons, "the removed photo is still in Bob's presence"
    finally:
        t.run("cs", "set-client-policy", "--web-service-poll-interval", "00:05:00", *t.location)
        peers.kill_all()
