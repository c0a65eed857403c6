"""Autodiscover: SOAP (driven by exchangelib and raw), POX (raw POST, as DavMail/SIPE send it),
and the client access settings commands applied without a restart.

Run: TANDEM_BIN=target/debug/tandem pytest tests/interop/test_autodiscover.py -q
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import requests

from conftest import DEMO_PASSWORD, DOMAIN, Tandem

A = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
POX_REQ = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
POX_RESP = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
ALICE = f"alice@{DOMAIN}"


def soap_user_settings(mailboxes, settings):
    users = "".join(f"<a:User><a:Mailbox>{m}</a:Mailbox></a:User>" for m in mailboxes)
    names = "".join(f"<a:Setting>{s}</a:Setting>" for s in settings)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="{A}" xmlns:wsa="http://www.w3.org/2005/08/addressing">
 <s:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion>
  <wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings</wsa:Action></s:Header>
 <s:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users>{users}</a:Users>
  <a:RequestedSettings>{names}</a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></s:Body></s:Envelope>"""


def pox_request(address, schema=OUTLOOK):
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="{POX_REQ}"><Request><EMailAddress>{address}</EMailAddress>
<AcceptableResponseSchema>{schema}</AcceptableResponseSchema></Request></Autodiscover>"""


def endpoints(tandem):
    st = tandem.status()
    return {
        "status": st,
        "ca": st["ca_certificate"],
        "svc": st["mailbox"]["autodiscover_svc_url"],
        "xml": st["mailbox"]["autodiscover_xml_url"],
        "ews": st["mailbox"]["ews_url"],
        "auth": (ALICE, DEMO_PASSWORD),
        "tandem": tandem,
    }


@pytest.fixture(scope="module")
def mbx(tandem_bin, tmp_path_factory):
    """One deployment for the read-only tests of this module (fewer starts, quicker)."""
    t = Tandem(tandem_bin, tmp_path_factory.mktemp("autodiscover"))
    t.start()
    yield endpoints(t)
    t.kill_all()


def post(m, url, body, auth=True):
    return requests.post(
        url,
        data=body.encode(),
        headers={"Content-Type": "text/xml; charset=utf-8"},
        auth=m["auth"] if auth else None,
        verify=m["ca"],
        timeout=20,
    )


def user_responses(text):
    root = ET.fromstring(text)
    out = []
    for ur in root.iter(f"{{{A}}}UserResponse"):
        settings = {s.find(f"{{{A}}}Name").text: s.find(f"{{{A}}}Value").text for s in ur.iter(f"{{{A}}}UserSetting")}
        errors = {
            e.find(f"{{{A}}}SettingName").text: e.find(f"{{{A}}}ErrorCode").text
            for e in ur.iter(f"{{{A}}}UserSettingError")
        }
        out.append((ur.find(f"{{{A}}}ErrorCode").text, settings, errors))
    return out


def test_autodiscover_unauthenticated_probe_gets_401(mbx):
    for url in (mbx["svc"], mbx["xml"], mbx["svc"].upper().replace("HTTPS://", "https://")):
        r = post(mbx, url, soap_user_settings([ALICE], ["ExternalEwsUrl"]), auth=False)
        assert r.status_code == 401, (url, r.status_code, r.text)
        assert r.headers["WWW-Authenticate"].lower().startswith("basic realm=")
        assert r.headers.get("Connection", "").lower() != "close"
    r = requests.post(mbx["svc"], data=b"<x/>", auth=(ALICE, "wrong-password"), verify=mbx["ca"], timeout=20)
    assert r.status_code == 401


def test_get_user_settings_returns_only_requested(mbx):
    wanted = [
        "UserDisplayName", "UserDN", "InternalEwsUrl", "ExternalEwsUrl", "EwsSupportedSchemas",
        "AutoDiscoverSMTPAddress", "CasVersion", "ActiveDirectoryServer", "InternalOABUrl",
        "ExternalOABUrl", "InternalUMUrl", "ExternalUMUrl", "NoSuchSetting",
    ]
    r = post(mbx, mbx["svc"], soap_user_settings([ALICE, "nobody@" + DOMAIN], wanted))
    assert r.status_code == 200, r.text
    (code, settings, errors), (code2, settings2, _) = user_responses(r.text)
    assert code == "NoError"
    assert settings["UserDisplayName"] == "Alice Anderson"
    assert settings["ExternalEwsUrl"] == mbx["ews"]
    assert settings["InternalEwsUrl"] == mbx["ews"]
    assert settings["AutoDiscoverSMTPAddress"] == ALICE
    assert "Exchange2016" in settings["EwsSupportedSchemas"]
    assert settings["UserDN"].startswith("/o=")
    assert errors["NoSuchSetting"] == "InvalidSetting"
    # No external OAB/UM URL is set by default: Exchange reports them as not available.
    assert errors["ExternalOABUrl"] == "SettingIsNotAvailable"
    assert errors["ExternalUMUrl"] == "SettingIsNotAvailable"
    assert set(settings) | set(errors) == set(wanted)
    assert code2 == "InvalidUser" and settings2 == {}
    assert "ServerVersionInfo" in r.text and "GetUserSettingsResponse" in r.text


def test_get_domain_settings(mbx):
    body = f"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="{A}"><s:Body>
<a:GetDomainSettingsRequestMessage><a:Request><a:Domains><a:Domain>{DOMAIN}</a:Domain><a:Domain>fabrikam.example</a:Domain></a:Domains>
<a:RequestedSettings><a:Setting>ExternalEwsUrl</a:Setting><a:Setting>ExternalEwsVersion</a:Setting></a:RequestedSettings>
</a:Request></a:GetDomainSettingsRequestMessage></s:Body></s:Envelope>"""
    r = post(mbx, mbx["svc"], body)
    assert r.status_code == 200, r.text
    root = ET.fromstring(r.text)
    responses = list(root.iter(f"{{{A}}}DomainResponse"))
    assert [d.find(f"{{{A}}}ErrorCode").text for d in responses] == ["NoError", "InvalidDomain"]
    values = {s.find(f"{{{A}}}Name").text: s.find(f"{{{A}}}Value").text for s in responses[0].iter(f"{{{A}}}DomainSetting")}
    assert values["ExternalEwsUrl"] == mbx["ews"]
    assert values["ExternalEwsVersion"].startswith("15.")


def test_soap_autodiscover_refuses_dtd_and_garbage(mbx):
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    for body in (bomb, "not xml", '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>'):
        r = post(mbx, mbx["svc"], body)
        assert r.status_code in (400, 500), r.text
        assert "Fault" in r.text


def test_exchangelib_soap_autodiscover(mbx):
    """exchangelib's real SOAP autodiscovery (GetUserSettings), entered through its cache as
    real-clients.md §1.1 (a) describes, since the lab has no DNS for the test domain."""
    from exchangelib import BASIC, Account, Configuration, Credentials
    from exchangelib.autodiscover import clear_cache
    from exchangelib.autodiscover.cache import autodiscover_cache
    from exchangelib.autodiscover.protocol import AutodiscoverProtocol
    from exchangelib.protocol import close_connections

    import os

    os.environ["REQUESTS_CA_BUNDLE"] = mbx["ca"]
    clear_cache()
    creds = Credentials(ALICE, DEMO_PASSWORD)
    try:
        autodiscover_cache[(DOMAIN, creds)] = AutodiscoverProtocol(
            config=Configuration(service_endpoint=mbx["svc"], credentials=creds, auth_type=BASIC)
        )
        acc = Account(ALICE, credentials=creds, autodiscover=True)
        assert acc.protocol.service_endpoint.lower() == mbx["ews"].lower()
        assert acc.primary_smtp_address == ALICE
        assert acc.version.api_version.startswith("Exchange2016") or acc.version.build.major_version == 15
    finally:
        clear_cache()
        close_connections()


def test_pox_autodiscover(mbx):
    r = post(mbx, mbx["xml"], pox_request(ALICE))
    assert r.status_code == 200, r.text
    root = ET.fromstring(r.text)
    assert root.tag == f"{{{POX_RESP}}}Autodiscover"
    resp = root.find(f"{{{OUTLOOK}}}Response")
    user = resp.find(f"{{{OUTLOOK}}}User")
    assert user.find(f"{{{OUTLOOK}}}DisplayName").text == "Alice Anderson"
    assert user.find(f"{{{OUTLOOK}}}AutoDiscoverSMTPAddress").text == ALICE
    protocols = {p.find(f"{{{OUTLOOK}}}Type").text: p for p in resp.iter(f"{{{OUTLOOK}}}Protocol")}
    # No web client is served yet, so no WEB protocol unless an administrator publishes an OWA URL.
    assert {"EXCH", "EXPR"} <= set(protocols) and "WEB" not in protocols, set(protocols)
    exch = protocols["EXCH"]
    for field in ("EwsUrl", "ASUrl", "OOFUrl", "UMUrl", "OABUrl", "Server", "ServerDN", "MdbDN", "AuthPackage"):
        assert exch.find(f"{{{OUTLOOK}}}{field}") is not None, field
    assert exch.find(f"{{{OUTLOOK}}}EwsUrl").text == mbx["ews"]
    assert protocols["EXPR"].find(f"{{{OUTLOOK}}}EwsUrl").text == mbx["ews"]
    # DavMail scans the reply line by line for <EwsUrl>…</EwsUrl>.
    assert f"<EwsUrl>{mbx['ews']}</EwsUrl>" in r.text

    t = mbx["tandem"]
    owa = f"https://mail.{DOMAIN}/owa/"
    r = t.run("exchange", "set-client-access-server", "--owa-internal-url", owa, *t.location)
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        r = post(mbx, mbx["xml"], pox_request(ALICE))
        web = [p for p in ET.fromstring(r.text).iter(f"{{{OUTLOOK}}}Protocol")
               if p.find(f"{{{OUTLOOK}}}Type").text == "WEB"]
        assert len(web) == 1, r.text
        assert web[0].find(f"{{{OUTLOOK}}}Internal/{{{OUTLOOK}}}OWAUrl").text == owa, r.text
    finally:
        t.run("exchange", "set-client-access-server", "--owa-internal-url", "", *t.location)


def pox_error(text):
    root = ET.fromstring(text)
    err = root.find(f"{{{POX_RESP}}}Response/{{{POX_RESP}}}Error")
    return err.find(f"{{{POX_RESP}}}ErrorCode").text


def test_pox_errors(mbx):
    r = post(mbx, mbx["xml"], "<Autodiscover><garbage")
    assert r.status_code == 200 and pox_error(r.text) == "600", r.text
    r = post(mbx, mbx["xml"], '<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>')
    assert pox_error(r.text) == "600"
    r = post(mbx, mbx["xml"], pox_request(ALICE, "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"))
    assert pox_error(r.text) == "601"
    r = post(mbx, mbx["xml"], pox_request("nobody@" + DOMAIN))
    assert pox_error(r.text) == "500"


def test_client_access_server_commands_apply_without_restart(tandem):
    mbx = endpoints(tandem)
    t = mbx["tandem"]
    r = t.run("exchange", "get-client-access-server", *t.location, "--json")
    assert r.returncode == 0, r.stderr
    cas = json.loads(r.stdout)
    # Exchange's form (the server's name), with the listener's port so that the URI answers.
    assert cas["AutoDiscoverServiceInternalUri"] == f"https://mail.{DOMAIN}:{t.mailbox_https_port}/Autodiscover/Autodiscover.xml"
    assert cas["EwsInternalUrl"] == mbx["ews"]
    uri = f"https://autodiscover.{DOMAIN}/autodiscover/autodiscover.xml"
    ext = f"https://mail.{DOMAIN}/EWS/Exchange.asmx"
    um = f"https://mail.{DOMAIN}/UnifiedMessaging/Service.asmx"
    r = t.run(
        "exchange", "set-client-access-server", *t.location, "--autodiscover-service-internal-uri", uri,
        "--ews-external-url", ext, "--um-external-url", um, "--oab-internal-url", "",
    )
    assert r.returncode == 0, r.stderr
    cas = json.loads(t.run("exchange", "get-client-access-server", *t.location, "--json").stdout)
    assert cas["AutoDiscoverServiceInternalUri"] == uri and cas["EwsExternalUrl"] == ext
    assert cas["OabInternalUrl"] is None
    # The running server answers with the new values at once.
    r = post(mbx, mbx["svc"], soap_user_settings([ALICE], ["ExternalEwsUrl", "ExternalUMUrl", "InternalOABUrl"]))
    (_, settings, errors), = user_responses(r.text)
    assert settings == {"ExternalEwsUrl": ext, "ExternalUMUrl": um}
    assert errors == {"InternalOABUrl": "SettingIsNotAvailable"}
    # Bad input: exit 2, one line, nothing changed.
    r = t.run("exchange", "set-client-access-server", *t.location, "--ews-internal-url", "http://plain/EWS")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = t.run("exchange", "set-client-access-server", *t.location, "--identity", "NOPE", "--ews-internal-url", ext)
    assert r.returncode == 2, r.stderr
    cas = json.loads(t.run("exchange", "get-client-access-server", *t.location, "--json").stdout)
    assert cas["EwsInternalUrl"] == mbx["ews"]
