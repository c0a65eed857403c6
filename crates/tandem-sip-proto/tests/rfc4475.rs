#![allow(clippy::unwrap_used, clippy::expect_used)]
//! RFC 4475, "SIP Torture Test Messages", section 3: every message, byte for byte as the RFC's
//! own archive (Appendix B) holds it, in `tests/rfc4475/<name>.sip`.
//!
//! What the parser must do with each is in [`EXPECTED`]: parse it, drop it (an `Err` without a
//! reply: unreadable requests and bad responses), or answer it with the status the RFC names.
//! Where the RFC lets an element choose between rejecting and being liberal, the entry says
//! which way this parser goes and why. The valid messages of §3.1.1 also get the semantic checks
//! the RFC lists for them, further down.

use std::path::Path;

use tandem_sip_proto::{
    HeaderView, Host, Limits, Message, Method, NameAddr, Rejected, Request, Response, StreamItem, StreamParser,
    Transport, Via, parse_datagram, split_comma_list,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// `Ok(Some(message))`, and the message survives `to_bytes` and a second parse unchanged.
    Parse,
    /// `Err` with a reply of this status.
    Answer(u16),
    /// `Err` without a reply.
    Drop,
}

use Outcome::{Answer, Drop, Parse};

const EXPECTED: &[(&str, &str, Outcome)] = &[
    // 3.1.1 Valid messages: all parse.
    ("3.1.1.1", "wsinv", Parse),
    ("3.1.1.2", "intmeth", Parse),
    ("3.1.1.3", "esc01", Parse),
    ("3.1.1.4", "escnull", Parse),
    ("3.1.1.5", "esc02", Parse),
    ("3.1.1.6", "lwsdisp", Parse),
    ("3.1.1.7", "longreq", Parse),
    ("3.1.1.8", "dblreq", Parse),
    ("3.1.1.9", "semiuri", Parse),
    ("3.1.1.10", "transports", Parse),
    ("3.1.1.11", "mpart01", Parse),
    ("3.1.1.12", "unreason", Parse),
    ("3.1.1.13", "noreason", Parse),
    // 3.1.2 Invalid messages.
    ("3.1.2.1", "badinv01", Answer(400)),
    // Over UDP (a datagram): 400. On a stream the parser waits for the missing bytes.
    ("3.1.2.2", "clerr", Answer(400)),
    ("3.1.2.3", "ncl", Answer(400)),
    ("3.1.2.4", "scalar02", Answer(400)),
    // A response: "an element receiving this response will simply discard it".
    ("3.1.2.5", "scalarlg", Drop),
    ("3.1.2.6", "quotbal", Answer(400)),
    ("3.1.2.7", "ltgtruri", Answer(400)),
    ("3.1.2.8", "lwsruri", Answer(400)),
    // "It is acceptable to reject this request as malformed": rejected.
    ("3.1.2.9", "lwsstart", Answer(400)),
    ("3.1.2.10", "trws", Answer(400)),
    // Acceptable to reject or to ignore the headers; a proxy must never forward them. Rejected,
    // so they can never be forwarded.
    ("3.1.2.11", "escruri", Answer(400)),
    // Liberal: the Date header field is not used by this server, and the RFC asks elements not
    // to reject over Date "unless the contents of the Date header field were actually important".
    ("3.1.2.12", "baddate", Parse),
    // Liberal: Contact is not interpreted by the parser (the registrar reads it, and the
    // addr-spec is unambiguous here, as the RFC notes). The `?` headers are kept verbatim.
    ("3.1.2.13", "regbadct", Parse),
    // "It is reasonable to reject this request": rejected (no LWS inside `<…>`).
    ("3.1.2.14", "badaspec", Answer(400)),
    // Rejected for the unquoted display names with commas, and the datagram also lacks the
    // empty line that ends the headers (it ends right after `l: 0`).
    ("3.1.2.15", "baddn", Answer(400)),
    ("3.1.2.16", "badvers", Answer(505)),
    ("3.1.2.17", "mismatch01", Answer(400)),
    // 501 is preferred but "a 400 Bad Request is also acceptable": the parser cannot know
    // which methods the application implements, so the CSeq mismatch decides.
    ("3.1.2.18", "mismatch02", Answer(400)),
    ("3.1.2.19", "bigcode", Drop),
    // 3.2 Transaction-layer semantics: "a parser must not break"; the empty branch after the
    // magic cookie is the transaction layer's business (reject or fall back to RFC 2543 matching).
    ("3.2.1", "badbranch", Parse),
    // 3.3 Application-layer semantics.
    // Missing Call-ID, From and To: "ideally, it will respond with a 400". The response copies
    // the Via and CSeq that are there.
    ("3.3.1", "insuf", Answer(400)),
    ("3.3.2", "unkscm", Answer(416)),
    ("3.3.3", "novelsc", Answer(416)),
    // The RFC asks parsers to accept `To: isbn:…` and `From: <http://…>`. This parser checks From
    // and To as SIP/SIPS/tel addresses (the registrar, proxy and presence code rely on that, and
    // `Uri` has no other schemes), so the REGISTER is answered 400, which is also what a
    // registrar does with an address of record that is not a SIP URI.
    ("3.3.4", "unksm2", Answer(400)),
    // Unsupported extensions (420), unknown body type (415), unknown authorization scheme,
    // Max-Forwards 0 (483), Contact parameters, Accept: the application decides; all parse.
    ("3.3.5", "bext01", Parse),
    ("3.3.6", "invut", Parse),
    ("3.3.7", "regaut01", Parse),
    // Repeated single-valued headers: "must respond with a 400".
    ("3.3.8", "multi01", Answer(400)),
    // Two Content-Length values: the framing is unknowable; 400.
    ("3.3.9", "mcl01", Answer(400)),
    // A 200 with a broadcast Via: well formed; not routing it there is the transport's job.
    ("3.3.10", "bcast", Parse),
    ("3.3.11", "zeromf", Parse),
    ("3.3.12", "cparam01", Parse),
    ("3.3.13", "cparam02", Parse),
    // The escaped Route in the Contact is the registrar's to store and never to act on.
    ("3.3.14", "regescrt", Parse),
    ("3.3.15", "sdp01", Parse),
    // 3.4 Backward compatibility: an RFC 2543 INVITE (no branch, no Max-Forwards, no
    // Content-Length on UDP) parses.
    ("3.4.1", "inv2543", Parse),
];

fn vector(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rfc4475").join(format!("{name}.sip"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(name: &str) -> Result<Option<Message>, Rejected> {
    parse_datagram(&vector(name), &Limits::default())
}

fn request(name: &str) -> Request {
    match parse(name) {
        Ok(Some(Message::Request(r))) => r,
        other => panic!("{name}: expected a request, got {other:?}"),
    }
}

fn response(name: &str) -> Response {
    match parse(name) {
        Ok(Some(Message::Response(r))) => r,
        other => panic!("{name}: expected a response, got {other:?}"),
    }
}

#[test]
fn every_vector_has_an_expectation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rfc4475");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".sip").map(str::to_owned))
        .collect();
    files.sort();
    let mut names: Vec<String> = EXPECTED.iter().map(|(_, n, _)| (*n).to_owned()).collect();
    names.sort();
    assert_eq!(files, names);
    assert_eq!(EXPECTED.iter().filter(|(s, _, _)| s.starts_with("3.1.1.")).count(), 13);
    assert_eq!(EXPECTED.iter().filter(|(s, _, _)| s.starts_with("3.1.2.")).count(), 19);
}

#[test]
fn outcomes_are_as_the_rfc_asks() {
    let mut wrong = Vec::new();
    for (section, name, want) in EXPECTED {
        let got = match parse(name) {
            Ok(Some(_)) => Parse,
            Ok(None) => panic!("{name}: not a keep-alive"),
            Err(Rejected { reply: Some(r), .. }) => Answer(r.status),
            Err(Rejected { reply: None, .. }) => Drop,
        };
        if got != *want {
            wrong.push(format!("§{section} {name}: want {want:?}, got {got:?} ({:?})", parse(name).err()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn replies_are_well_formed_responses() {
    for (_, name, want) in EXPECTED {
        let Answer(status) = want else { continue };
        let reply = parse(name).unwrap_err().reply.unwrap();
        assert_eq!(reply.status, *status);
        // The reply carries the request's Via and CSeq, so the client can match it.
        let raw = vector(name);
        let head = String::from_utf8_lossy(&raw);
        assert!(reply.headers.get("Via").is_some_and(|v| head.contains(v)), "{name}");
        assert!(reply.headers.has("CSeq"), "{name}");
        assert!(reply.headers.get("Warning").is_some_and(|w| w.starts_with("399 ")), "{name}");
    }
}

#[test]
fn accepted_messages_round_trip() {
    for (_, name, want) in EXPECTED {
        if *want != Parse {
            continue;
        }
        let first = parse(name).unwrap().unwrap();
        let again = parse_datagram(&first.to_bytes(), &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: re-serialised message refused: {e:?}"))
            .unwrap();
        // Content-Length is written from the body: one more header when the original had none.
        let mut first = first;
        match &mut first {
            Message::Request(r) => r.headers.set("Content-Length", r.body.len().to_string()),
            Message::Response(r) => r.headers.set("Content-Length", r.body.len().to_string()),
        }
        assert_eq!(again, first, "{name}");
    }
}

#[test]
fn streams_neither_panic_nor_disagree() {
    for (section, name, _) in EXPECTED {
        let raw = vector(name);
        // Every split point: framing never panics, whatever the message.
        for cut in [1, raw.len() / 3, raw.len() / 2, raw.len() - 1] {
            let mut s = StreamParser::new(Limits::default());
            s.push(&raw[..cut]);
            let _ = s.next_item();
            s.push(&raw[cut..]);
            while let Ok(Some(_)) = s.next_item() {}
        }
        // The valid messages all carry Content-Length, so a stream yields what a datagram does.
        if section.starts_with("3.1.1.") {
            let mut s = StreamParser::new(Limits::default());
            s.push(&raw);
            let Ok(Some(StreamItem::Message(m))) = s.next_item() else { panic!("{name}: stream refused it") };
            assert_eq!(Some(*m), parse(name).unwrap(), "{name}");
        }
    }
}

#[test]
fn oversized_request_is_answered_513() {
    let limits = Limits { max_message: 1024, ..Limits::default() };
    let rejected = parse_datagram(&vector("longreq"), &limits).unwrap_err();
    assert_eq!(rejected.error.status(), 513);
    // The header block itself is larger than the limit: nothing to answer along.
    assert!(rejected.reply.is_none());
    let rejected = parse_datagram(&vector("mpart01"), &limits).unwrap_err();
    assert_eq!(rejected.reply.unwrap().status, 513);
}

// ---- 3.1.1: what the valid messages carry ----

/// Short tortuous INVITE: folding everywhere, LWS around `:`, `;`, `=` and `/`, escaped quotes,
/// an empty Subject, mixed compact and long names, unknown parameters and headers, leading zeros.
#[test]
fn wsinv() {
    let r = request("wsinv");
    assert_eq!(r.method, Method::Invite);
    assert!(r.uri.params.has("unknownparam"));
    let to = r.to().unwrap();
    assert_eq!(to.tag(), Some("1918181833n"));
    assert_eq!(to.uri.user.as_deref(), Some("vivekg"));
    let from = r.from().unwrap();
    assert_eq!(from.display_name.as_deref(), Some(r#"J Rosenberg \""#));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(r.headers.get("Max-Forwards").unwrap().parse::<u8>().unwrap(), 68);
    let cseq = r.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
    assert_eq!(r.call_id(), Some("wsinv.ndaksdj@192.0.2.1"));
    assert_eq!(r.headers.get("Subject"), Some(""));
    assert_eq!(r.headers.get("NewFangledHeader"), Some("newfangled value continued newfangled value"));
    // Unknown: kept verbatim, never split as a list.
    assert_eq!(r.headers.get("UnknownHeaderWithUnusualValue"), Some(";;,,;;,;"));
    let vias = r.vias().unwrap();
    let got: Vec<(Transport, Host, Option<&str>)> =
        vias.iter().map(|v| (v.transport, v.host.clone(), v.branch())).collect();
    assert_eq!(
        got,
        vec![
            (Transport::Udp, Host::Ip("192.0.2.2".parse().unwrap()), Some("390skdjuw")),
            (Transport::Tcp, Host::Name("spindle.example.com".into()), Some("z9hG4bK9ikj8")),
            (Transport::Udp, Host::Ip("192.168.255.111".parse().unwrap()), Some("z9hG4bK30239")),
        ]
    );
    let contact = NameAddr::parse(r.headers.get("Contact").unwrap()).unwrap();
    assert_eq!(contact.display_name.as_deref(), Some(r#"Quoted string """#));
    assert_eq!(contact.params.get("newparam"), Some("newvalue"));
    assert!(contact.params.has("secondparam"));
    assert_eq!(contact.params.get("q"), Some("0.33"));
    let route = NameAddr::parse(r.headers.get("Route").unwrap()).unwrap();
    assert!(route.uri.params.has("lr") && route.uri.params.has("unknown-no-value"));
    assert_eq!(route.uri.param("unknownwith"), Some("value"));
    assert_eq!(r.body.len(), 150);
    assert!(r.body.starts_with(b"v=0\r\n"));
}

/// Every token character in the method, the URI's user and password, parameters and names.
#[test]
fn intmeth() {
    let r = request("intmeth");
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(r.method, Method::Other(method.into()));
    assert_eq!(r.cseq().unwrap().method, r.method);
    assert_eq!(r.uri.user.as_deref(), Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"));
    assert_eq!(r.uri.password.as_deref(), Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"));
    assert_eq!(r.uri.host, Host::Name("example.com".into()));
    assert!(r.uri.params.iter().next().is_none() && r.uri.headers.is_none());
    let to = r.to().unwrap();
    assert_eq!(to.display_name.as_deref(), Some("BEL:\x07 NUL:\x00 DEL:\x7f"));
    assert_eq!(to.uri.user.as_deref(), Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"));
    let from = r.from().unwrap();
    assert_eq!(from.display_name.as_deref(), Some("token1~` token2'+_ token3*%!.-"));
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert!(from.params.has("fromParam''~+*_!.-%"));
    assert_eq!(r.call_id(), Some(r#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#));
    assert_eq!(r.top_via().unwrap().branch(), Some("z9hG4bK-.!%66*_+`'~"));
    assert_eq!(r.headers.get("Max-Forwards"), Some("255"));
    assert_eq!(r.headers.get("extensionHeader-!.%*+_`'~"), Some("\u{feff}大停電"));
}

/// Escapes in URIs are decoded in the user part, and written back escaped.
#[test]
fn esc01() {
    let r = request("esc01");
    // The user is `sips:user@example.com`, not a URI inside a URI.
    assert_eq!(r.uri.user.as_deref(), Some("sips:user@example.com"));
    assert_eq!(r.uri.host, Host::Name("example.net".into()));
    assert!(
        Message::Request(r.clone())
            .to_bytes()
            .starts_with(b"INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\r\n")
    );
    assert_eq!(r.to().unwrap().uri.user.as_deref(), Some("user"));
    assert_eq!(r.from().unwrap().uri.user.as_deref(), Some("I have spaces"));
    assert_eq!(r.call_id(), Some("esc01.239409asdfakjkn23onasd0-3234"));
    assert_eq!(r.content_type(), Some("application/sdp"));
    let contact = NameAddr::parse(r.headers.get("Contact").unwrap()).unwrap();
    assert_eq!(contact.uri.user.as_deref(), Some("caller"));
    // Parameters keep their escapes (`%6C%72` is `lr`): compared as received, never decoded.
    assert!(contact.uri.params.has("%6C%72"));
    assert_eq!(r.body.len(), 150);
}

/// `%00` in a user part decodes to NUL and is never written back raw.
#[test]
fn escnull() {
    let r = request("escnull");
    assert_eq!(r.to().unwrap().uri.user.as_deref(), Some("null-\0-null"));
    assert_eq!(r.from().unwrap().uri.user.as_deref(), Some("null-\0-null"));
    let users: Vec<String> =
        r.headers.values("Contact").iter().map(|c| NameAddr::parse(c).unwrap().uri.user.unwrap()).collect();
    assert_eq!(users, ["\0", "\0\0"]);
    // Headers other than the Request-URI are kept as received; a URI built from the parsed form
    // escapes the NUL again.
    let bytes = Message::Request(r.clone()).to_bytes();
    assert!(!bytes.contains(&0));
    assert_eq!(r.to().unwrap().uri.to_string(), "sip:null-%00-null@example.com");
}

/// `%` that is not an escape, where escapes are not decoded: methods and header names.
#[test]
fn esc02() {
    let r = request("esc02");
    assert_eq!(r.method, Method::Other("RE%47IST%45R".into()));
    assert_ne!(r.method, Method::Register);
    assert_eq!(r.cseq().unwrap().method, r.method);
    assert_eq!(r.to().unwrap().display_name.as_deref(), Some("%Z%45"));
    assert_eq!(r.top_via().unwrap().branch(), Some("z9hG4bK209%fzsnel234"));
    // `C%6Fntact` is an unknown header, not a third Contact.
    assert_eq!(r.headers.get_all("Contact").count(), 2);
    assert_eq!(r.headers.get("C%6Fntact"), Some("<sip:alias2@host2.example.com>"));
}

#[test]
fn lwsdisp() {
    let r = request("lwsdisp");
    let from = r.from().unwrap();
    assert_eq!(from.display_name.as_deref(), Some("caller"));
    assert_eq!(from.tag(), Some("323"));
}

/// Long values everywhere: nothing truncated.
#[test]
fn longreq() {
    let raw = vector("longreq");
    let r = request("longreq");
    let to = r.to().unwrap();
    assert!(to.display_name.unwrap().contains(&"extreme".repeat(10)));
    assert_eq!(to.uri.port, Some(6000));
    let (last, value) = to.uri.params.iter().last().unwrap();
    assert!(last.starts_with("verylonglong") && last.ends_with("ParameterNameWithNoValue") && value.is_none());
    assert!(to.uri.param("unknownparam1").unwrap().ends_with("longvalue"));
    let from = r.from().unwrap();
    assert!(from.tag().unwrap().len() > 100);
    assert!(r.call_id().unwrap().len() > 100);
    let name = format!("Unknown-{}-Name", "Long".repeat(20));
    let value = r.headers.get(&name).unwrap();
    assert!(String::from_utf8_lossy(&raw).contains(value));
    let vias = r.headers.values("Via");
    assert_eq!(vias.len(), 34);
    assert_eq!(vias[0], "SIP/2.0/TCP sip33.example.com");
    assert!(r.vias().unwrap().last().unwrap().branch().unwrap().ends_with("longbranchvalue"));
    let contact = NameAddr::parse(r.headers.get("Contact").unwrap()).unwrap();
    assert_eq!(contact.uri.user.unwrap(), "amazinglylongcallername".repeat(5));
    assert_eq!(r.body.len(), 150);
}

/// Octets after Content-Length in a datagram are discarded (RFC 3261 §18.3).
#[test]
fn dblreq() {
    let r = request("dblreq");
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty());
    assert!(!String::from_utf8_lossy(&Message::Request(r).to_bytes()).contains("INVITE"));
}

/// A user part with `;` and an escaped `@`: no URI parameters.
#[test]
fn semiuri() {
    let r = request("semiuri");
    assert_eq!(r.uri.user.as_deref(), Some("user;par=u@example.net"));
    assert_eq!(r.uri.host, Host::Name("example.com".into()));
    assert!(r.uri.params.iter().next().is_none());
    assert_eq!(r.uri.to_string(), "sip:user;par=u%40example.net@example.com");
    let accept: Vec<&str> = r.headers.get_all("Accept").flat_map(split_comma_list).collect();
    assert_eq!(
        accept,
        [
            "application/sdp",
            "application/pkcs7-mime",
            "multipart/mixed",
            "multipart/signed",
            "message/sip",
            "message/sipfrag"
        ]
    );
}

/// Transports this server does not speak, below the top Via.
#[test]
fn transports() {
    let r = request("transports");
    let vias = r.headers.values("Via");
    let transports: Vec<&str> =
        vias.iter().map(|v| v.trim_start_matches("SIP/2.0/").split(' ').next().unwrap()).collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    assert_eq!(r.top_via().unwrap().transport, Transport::Udp);
    assert_eq!(Via::parse(vias[2]).unwrap().transport, Transport::Tls);
    // `Via` has no variant for SCTP or UNKNOWN: those values are kept as text, and forwarded.
    assert!(Via::parse(vias[1]).is_err());
    assert_eq!(r.call_id(), Some("transports.kijh4akdnaqjkwendsasfdj"));
}

/// A multipart body with binary parts: kept byte for byte.
#[test]
fn mpart01() {
    let raw = vector("mpart01");
    let r = request("mpart01");
    assert_eq!(r.method, Method::Message);
    assert_eq!(r.body.len(), 553);
    assert!(raw.ends_with(&r.body));
    assert_eq!(r.content_type(), Some("multipart/mixed;boundary=7a9cbec02ceef655"));
}

#[test]
fn unreason() {
    let r = response("unreason");
    assert_eq!(r.status, 200);
    assert_eq!(r.reason, "= 2**3 * 5**2 но сто девяносто девять - простое");
    assert_eq!(r.body.len(), 154);
}

/// An empty reason phrase, with the space before it kept on the way out.
#[test]
fn noreason() {
    let r = response("noreason");
    assert_eq!((r.status, r.reason.as_str()), (100, ""));
    assert!(r.to_bytes().starts_with(b"SIP/2.0 100 \r\n"));
}

// ---- 3.1.2 and 3.3: why the rejected ones are rejected ----

#[test]
fn rejections_name_their_fault() {
    let error = |name: &str| parse(name).unwrap_err().error.to_string();
    assert!(error("badinv01").contains("Via"));
    assert!(error("clerr").contains("Content-Length"));
    assert!(error("ncl").contains("Content-Length"));
    assert!(error("scalar02").contains("CSeq"));
    assert!(error("scalarlg").contains("CSeq"));
    assert!(error("ltgtruri").contains("malformed URI"));
    assert!(error("lwsstart").contains("start line"));
    assert!(error("escruri").contains("malformed URI"));
    assert!(error("badaspec").contains("name-addr"));
    assert!(error("mismatch01").contains("CSeq method"));
    assert!(error("multi01").contains("malformed"));
    assert!(error("unkscm").contains("unsupported URI scheme"));
    // baddn with the empty line added is still refused, for its display names.
    let mut baddn = vector("baddn");
    baddn.extend_from_slice(b"\r\n");
    let e = parse_datagram(&baddn, &Limits::default()).unwrap_err();
    assert!(e.error.to_string().contains("name-addr"), "{e:?}");
    assert_eq!(e.reply.unwrap().status, 400);
    // insuf is answered with what it has.
    let reply = parse("insuf").unwrap_err().reply.unwrap();
    assert!(reply.headers.has("Via") && reply.headers.has("CSeq") && !reply.headers.has("Call-ID"));
    // regbadct keeps the escaped header of its addr-spec Contact, for the registrar to refuse.
    let contact = NameAddr::parse(request("regbadct").headers.get("Contact").unwrap()).unwrap();
    assert!(contact.uri.headers.is_some());
}
