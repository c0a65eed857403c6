//! The SIP core's flows end to end over UDP, with a minimal user agent built on our own message
//! types: invariants of the registrar, IM and presence. Real clients (SIPp, sipsak, baresip,
//! linphone) drive the same flows in tests/interop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tandem_directory::{Directory, NewUser};
use tandem_frontend::sip::{self, SipCore, SipSettings};
use tandem_sip_proto::{
    Credentials, DigestAlgorithm, HeaderView, Message, Method, Request, Response, Uri, digest_response, parse_datagram,
};
use tandem_store::testing::TestDatabase;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const PASSWORD: &str = "correct horse";

struct Server {
    core: Arc<SipCore>,
    store: tandem_store::Store,
    addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    _dbs: (TestDatabase, TestDatabase, tempfile::TempDir),
}

async fn server() -> Server {
    server_with_rate(0).await
}

async fn server_with_rate(rate: u32) -> Server {
    server_with_policy(rate, sip::SipPolicy::default()).await
}

async fn server_with_policy(rate: u32, policy: sip::SipPolicy) -> Server {
    server_with_lockout(rate, policy, tandem_config::LockoutConfig::default()).await
}

async fn server_with_lockout(rate: u32, policy: sip::SipPolicy, lockout: tandem_config::LockoutConfig) -> Server {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir_db = TestDatabase::sqlite();
    let fe_db = TestDatabase::sqlite();
    let directory = Directory::open(&dir_db.url).await.unwrap().with_lockout(lockout);
    for name in ["alice", "bob", "carol"] {
        directory
            .add(&NewUser {
                name: name.parse().unwrap(),
                display_name: name.into(),
                sip_uri: format!("sip:{name}@litwareinc.com").parse().unwrap(),
                smtp_address: format!("{name}@litwareinc.com").parse().unwrap(),
                password: PASSWORD.into(),
            })
            .await
            .unwrap();
    }
    let store = tandem_frontend::admin::open_store_at(&fe_db.url).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let pki = tandem_pki::Pki::new(tmp.path());
    let spec = tandem_pki::ServerCertSpec {
        name: "frontend".into(),
        common_name: "pool.litwareinc.com".into(),
        organization: "litwareinc.com".into(),
        dns_names: vec!["pool.litwareinc.com".into()],
        ip_addresses: vec!["127.0.0.1".parse().unwrap()],
    };
    let (ids, _) = pki.ensure("litwareinc.com", &[spec]).unwrap();
    let slot = tandem_http::CertSlot::new(ids[0].chain.clone(), ids[0].key.clone_key()).unwrap();
    let tls = tokio_rustls::TlsAcceptor::from(tandem_http::tls_config(slot).unwrap());
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let settings = SipSettings {
        domain: "litwareinc.com".into(),
        names: vec!["pool.litwareinc.com".into()],
        udp: any,
        tcp: any,
        tls: any,
        advertised_host: "127.0.0.1".into(),
        requests_per_second_per_source: rate,
        digest_algorithms: vec![DigestAlgorithm::Md5, DigestAlgorithm::Sha256],
    };
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let core =
        sip::start_with(settings, policy, directory, store.clone(), tls, &tasks, shutdown.clone()).await.unwrap();
    let addr = core.settings.udp;
    Server { core, store, addr, shutdown, tasks, _dbs: (dir_db, fe_db, tmp) }
}

impl Server {
    fn core_store(&self) -> &tandem_store::Store {
        &self.store
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.tasks.close();
    }
}

/// A user agent over UDP that answers challenges with digest MD5.
struct Ua {
    name: &'static str,
    sock: UdpSocket,
    server: SocketAddr,
    cseq: u32,
    password: &'static str,
}

impl Ua {
    async fn new(name: &'static str, server: SocketAddr) -> Ua {
        Ua::bound(name, server, "127.0.0.1:0").await
    }

    async fn bound(name: &'static str, server: SocketAddr, local: &str) -> Ua {
        Ua { name, sock: UdpSocket::bind(local).await.unwrap(), server, cseq: 0, password: PASSWORD }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    fn request(&mut self, method: Method, target: &str, call_id: &str) -> Request {
        self.cseq += 1;
        let mut r = Request::new(method.clone(), Uri::parse(target).unwrap());
        r.headers.push("Via", format!("SIP/2.0/UDP {};branch=z9hG4bK{}{};rport", self.addr(), self.name, self.cseq));
        r.headers.push("Max-Forwards", "70");
        r.headers.push("From", format!("<sip:{}@litwareinc.com>;tag={}-tag", self.name, self.name));
        let to =
            if method == Method::Register { format!("sip:{}@litwareinc.com", self.name) } else { target.to_owned() };
        r.headers.push("To", format!("<{to}>"));
        r.headers.push("Call-ID", call_id.to_owned());
        r.headers.push("CSeq", format!("{} {}", self.cseq, method));
        r.headers.push("Contact", format!("<sip:{}@{}>", self.name, self.addr()));
        r
    }

    async fn recv(&self) -> Message {
        let mut buf = vec![0u8; 65536];
        let n =
            tokio::time::timeout(Duration::from_secs(5), self.sock.recv(&mut buf)).await.expect("no message").unwrap();
        parse_datagram(&buf[..n], &Default::default()).unwrap().unwrap()
    }

    async fn recv_response(&self) -> Response {
        loop {
            match self.recv().await {
                Message::Response(r) if r.status >= 200 => return r,
                Message::Response(_) => continue,
                Message::Request(req) => self.answer(&req, 200).await,
            }
        }
    }

    async fn recv_request(&self, method: Method) -> Request {
        loop {
            if let Message::Request(r) = self.recv().await
                && r.method == method
            {
                self.answer(&r, 200).await;
                return r;
            }
        }
    }

    async fn answer(&self, req: &Request, status: u16) {
        let r = req.response(status).with_to_tag("ua");
        self.sock.send_to(&r.to_bytes(), self.server).await.unwrap();
    }

    /// Sends, answers one challenge, returns the final response.
    async fn send(&mut self, req: Request) -> Response {
        self.sock.send_to(&req.to_bytes(), self.server).await.unwrap();
        let r = self.recv_response().await;
        if r.status != 401 && r.status != 407 {
            return r;
        }
        let req = self.with_credentials(req, &r);
        self.sock.send_to(&req.to_bytes(), self.server).await.unwrap();
        self.recv_response().await
    }

    /// Sends `req` to be challenged and returns it with credentials, not yet sent.
    async fn authorize(&mut self, req: Request) -> Request {
        self.sock.send_to(&req.to_bytes(), self.server).await.unwrap();
        let r = self.recv_response().await;
        assert!(r.status == 401 || r.status == 407, "expected a challenge, got {}", r.status);
        self.with_credentials(req, &r)
    }

    fn with_credentials(&mut self, mut req: Request, r: &Response) -> Request {
        let (challenge, answer) = if r.status == 401 {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let ch = r.headers.get_all(challenge).find(|c| c.contains("MD5")).unwrap().to_owned();
        let field = |k: &str| {
            let start = ch.find(&format!("{k}=\"")).unwrap() + k.len() + 2;
            ch[start..].split('"').next().unwrap().to_owned()
        };
        let mut creds = Credentials {
            username: self.name.into(),
            realm: field("realm"),
            nonce: field("nonce"),
            uri: req.uri.to_string(),
            response: String::new(),
            algorithm: DigestAlgorithm::Md5,
            cnonce: Some("abc".into()),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            opaque: None,
        };
        let ha1 = DigestAlgorithm::Md5.hex(format!("{}:{}:{}", self.name, creds.realm, self.password).as_bytes());
        creds.response = digest_response(&ha1, req.method.as_str(), &creds);
        self.cseq += 1;
        let method = req.method.clone();
        req.headers.set("CSeq", format!("{} {}", self.cseq, method));
        let via = format!("SIP/2.0/UDP {};branch=z9hG4bK{}{}auth;rport", self.addr(), self.name, self.cseq);
        req.headers.set("Via", via);
        req.headers.push(answer, creds.to_header());
        req
    }

    async fn register(&mut self, expires: u32) -> Response {
        let mut r = self.request(Method::Register, "sip:litwareinc.com", &format!("reg-{}", self.name));
        r.headers.push("Expires", expires.to_string());
        self.send(r).await
    }
}

#[tokio::test]
async fn register_message_and_offline_delivery() {
    let s = server().await;
    let mut alice = Ua::new("alice", s.addr).await;
    let mut bob = Ua::new("bob", s.addr).await;

    // Wrong password: 403, nothing stored.
    alice.password = "wrong password";
    assert_eq!(alice.register(600).await.status, 403);
    alice.password = PASSWORD;
    assert_eq!(alice.register(30).await.status, 423, "below Min-Expires");
    let ok = alice.register(600).await;
    assert_eq!(ok.status, 200);
    assert!(ok.headers.get("Contact").unwrap().contains("expires=600"));
    assert_eq!(s.core.location.lookup("sip:alice@litwareinc.com").len(), 1);

    // Bob is offline: the message is stored (202), then delivered when he registers.
    let mut m = alice.request(Method::Message, "sip:bob@litwareinc.com", "im-1");
    m.headers.push("Content-Type", "text/plain");
    m.body = b"are you there?".to_vec();
    assert_eq!(alice.send(m).await.status, 202);
    assert_eq!(bob.register(600).await.status, 200);
    let delivered = bob.recv_request(Method::Message).await;
    assert_eq!(delivered.body, b"are you there?");
    assert!(!delivered.headers.has("Proxy-Authorization"));
    assert!(delivered.headers.get("From").unwrap().contains("alice"));

    // Online: forwarded, the sender gets the callee's 200.
    let mut m = alice.request(Method::Message, "sip:bob@litwareinc.com", "im-2");
    m.headers.push("Content-Type", "text/plain");
    m.body = b"hello bob".to_vec();
    let sent = alice.send(m);
    let (resp, got) = tokio::join!(sent, bob.recv_request(Method::Message));
    assert_eq!(resp.status, 200);
    assert_eq!(got.body, b"hello bob");

    // Unknown user: 404. Unregister: binding gone.
    let m = alice.request(Method::Message, "sip:nobody@litwareinc.com", "im-3");
    assert_eq!(alice.send(m).await.status, 404);
    assert_eq!(bob.register(0).await.status, 200);
    assert!(s.core.location.lookup("sip:bob@litwareinc.com").is_empty());
}

#[tokio::test]
async fn presence_publish_subscribe_notify() {
    let s = server().await;
    let mut alice = Ua::new("alice", s.addr).await;
    let mut bob = Ua::new("bob", s.addr).await;
    assert_eq!(bob.register(600).await.status, 200);
    assert_eq!(alice.register(600).await.status, 200);

    // Alice watches Bob: 200, then a NOTIFY with his state (registered: open).
    let mut sub = alice.request(Method::Subscribe, "sip:bob@litwareinc.com", "sub-1");
    sub.headers.push("Event", "presence");
    sub.headers.push("Expires", "600");
    sub.headers.push("Accept", "application/pidf+xml");
    assert_eq!(alice.send(sub).await.status, 200);
    let n = alice.recv_request(Method::Notify).await;
    assert!(n.headers.get("Subscription-State").unwrap().starts_with("active"));
    assert!(String::from_utf8_lossy(&n.body).contains("<basic>open</basic>"));

    // Bob publishes busy: Alice is told.
    let mut p = bob.request(Method::Publish, "sip:bob@litwareinc.com", "pub-1");
    p.headers.push("Event", "presence");
    p.headers.push("Expires", "600");
    p.headers.push("Content-Type", "application/pidf+xml");
    p.body = br#"<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:bob@litwareinc.com"><tuple id="a"><status><basic>open</basic></status></tuple><rpid:activities><rpid:busy/></rpid:activities></presence>"#.to_vec();
    let published = bob.send(p).await;
    assert_eq!(published.status, 200);
    let etag = published.headers.get("SIP-ETag").unwrap().to_owned();
    let n = alice.recv_request(Method::Notify).await;
    assert!(String::from_utf8_lossy(&n.body).contains("busy"), "{}", String::from_utf8_lossy(&n.body));

    // A refresh with a wrong entity tag: 412.
    let mut p = bob.request(Method::Publish, "sip:bob@litwareinc.com", "pub-2");
    p.headers.push("Event", "presence");
    p.headers.push("SIP-If-Match", "nope");
    assert_eq!(bob.send(p).await.status, 412);
    // Bob removes the publication and unregisters: Alice sees him closed (offline).
    let mut p = bob.request(Method::Publish, "sip:bob@litwareinc.com", "pub-3");
    p.headers.push("Event", "presence");
    p.headers.push("SIP-If-Match", etag);
    p.headers.push("Expires", "0");
    assert_eq!(bob.send(p).await.status, 200);
    assert_eq!(bob.register(0).await.status, 200);
    let mut closed = false;
    for _ in 0..3 {
        let n = alice.recv_request(Method::Notify).await;
        if String::from_utf8_lossy(&n.body).contains("<basic>closed</basic>") {
            closed = true;
            break;
        }
    }
    assert!(closed, "watcher saw Bob go offline");

    // Unknown event package: 489.
    let mut sub = alice.request(Method::Subscribe, "sip:bob@litwareinc.com", "sub-2");
    sub.headers.push("Event", "dialog");
    assert_eq!(alice.send(sub).await.status, 489);
}

#[tokio::test]
async fn retransmissions_are_absorbed_and_bad_requests_answered() {
    let s = server().await;
    let ua = Ua::new("carol", s.addr).await;
    // A malformed CSeq: 400 from the parser, no crash.
    let raw = format!(
        "OPTIONS sip:litwareinc.com SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKx1\r\nFrom: <sip:carol@litwareinc.com>;tag=1\r\nTo: <sip:litwareinc.com>\r\nCall-ID: bad\r\nCSeq: x OPTIONS\r\nContent-Length: 0\r\n\r\n",
        ua.addr()
    );
    ua.sock.send_to(raw.as_bytes(), s.addr).await.unwrap();
    // The answer echoes the broken CSeq, so read its status line only.
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(Duration::from_secs(5), ua.sock.recv(&mut buf)).await.unwrap().unwrap();
    assert!(buf[..n].starts_with(b"SIP/2.0 400 "), "{}", String::from_utf8_lossy(&buf[..n]));
    // The same OPTIONS twice: the second is a retransmission and gets the same answer.
    let ok = raw.replace("CSeq: x OPTIONS", "CSeq: 1 OPTIONS").replace("z9hG4bKx1", "z9hG4bKx2");
    for _ in 0..2 {
        ua.sock.send_to(ok.as_bytes(), s.addr).await.unwrap();
        let Message::Response(r) = ua.recv().await else { panic!() };
        assert_eq!(r.status, 200);
        assert!(r.headers.get("Allow").unwrap().contains("MESSAGE"));
    }
}

#[tokio::test]
async fn call_through_the_proxy_and_cancel() {
    let s = server().await;
    let mut alice = Ua::new("alice", s.addr).await;
    let mut bob = Ua::new("bob", s.addr).await;
    assert_eq!(alice.register(600).await.status, 200);
    assert_eq!(bob.register(600).await.status, 200);

    // INVITE → 407 → INVITE with credentials → forwarded to Bob with a Record-Route.
    let mut inv = alice.request(Method::Invite, "sip:bob@litwareinc.com", "call-1");
    inv.headers.push("Content-Type", "application/sdp");
    inv.body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
        .to_vec();
    alice.sock.send_to(&inv.to_bytes(), s.addr).await.unwrap();
    let challenge = alice.recv_response().await;
    assert_eq!(challenge.status, 407);
    // The ACK for the 407 is absorbed by the proxy's transaction.
    let mut ack = Request::new(Method::Ack, inv.uri.clone());
    for h in ["Via", "From", "Call-ID", "Max-Forwards"] {
        ack.headers.push(h, inv.headers.get(h).unwrap().to_owned());
    }
    ack.headers.push("To", challenge.headers.get("To").unwrap().to_owned());
    ack.headers.push("CSeq", format!("{} ACK", alice.cseq));
    alice.sock.send_to(&ack.to_bytes(), s.addr).await.unwrap();

    let invite = {
        let authorized = alice.with_credentials(inv.clone(), &challenge);
        let resp_fut = async {
            alice.sock.send_to(&authorized.to_bytes(), s.addr).await.unwrap();
            alice.recv_response().await
        };
        let bob_side = async {
            loop {
                if let Message::Request(r) = bob.recv().await
                    && r.method == Method::Invite
                {
                    assert!(r.headers.get("Record-Route").unwrap().contains(";lr"));
                    assert!(!r.headers.has("Proxy-Authorization"), "credentials are consumed by the proxy");
                    let ringing = r.response(180).with_to_tag("bobtag");
                    bob.sock.send_to(&ringing.to_bytes(), s.addr).await.unwrap();
                    let mut ok = r.response(200).with_to_tag("bobtag");
                    for rr in r.headers.get_all("Record-Route") {
                        ok.headers.push("Record-Route", rr.to_owned());
                    }
                    ok.headers.push("Contact", format!("<sip:bob@{}>", bob.addr()));
                    bob.sock.send_to(&ok.to_bytes(), s.addr).await.unwrap();
                    return r;
                }
            }
        };
        let (resp, invite) = tokio::join!(resp_fut, bob_side);
        assert_eq!(resp.status, 200, "the caller gets the callee's 200");
        assert!(resp.headers.get("Record-Route").is_some());
        invite
    };
    assert_eq!(invite.body, inv.body, "SDP passes unchanged");

    // ACK and BYE follow the Route set through the proxy to Bob.
    let rr = invite.headers.get("Record-Route").unwrap().to_owned();
    let mut ack = Request::new(Method::Ack, Uri::parse(&format!("sip:bob@{}", bob.addr())).unwrap());
    ack.headers.push("Via", format!("SIP/2.0/UDP {};branch=z9hG4bKack2;rport", alice.addr()));
    ack.headers.push("Route", rr.clone());
    ack.headers.push("From", "<sip:alice@litwareinc.com>;tag=alice-tag");
    ack.headers.push("To", "<sip:bob@litwareinc.com>;tag=bobtag");
    ack.headers.push("Call-ID", "call-1");
    ack.headers.push("CSeq", format!("{} ACK", alice.cseq));
    ack.headers.push("Max-Forwards", "70");
    alice.sock.send_to(&ack.to_bytes(), s.addr).await.unwrap();
    let got_ack = loop {
        if let Message::Request(r) = bob.recv().await
            && r.method == Method::Ack
        {
            break r;
        }
    };
    assert_eq!(got_ack.headers.values("Via").len(), 2, "the proxy added its Via");
    let mut bye = ack.clone();
    bye.method = Method::Bye;
    bye.headers.set("Via", format!("SIP/2.0/UDP {};branch=z9hG4bKbye1;rport", alice.addr()));
    bye.headers.set("CSeq", format!("{} BYE", alice.cseq + 1));
    alice.sock.send_to(&bye.to_bytes(), s.addr).await.unwrap();
    let (bye_resp, _) = tokio::join!(alice.recv_response(), bob.recv_request(Method::Bye));
    assert_eq!(bye_resp.status, 200);

    // CANCEL of a ringing call: 200 for the CANCEL, 487 for the INVITE.
    let inv = alice.request(Method::Invite, "sip:bob@litwareinc.com", "call-2");
    let inv = alice.authorize(inv).await;
    alice.sock.send_to(&inv.to_bytes(), s.addr).await.unwrap();
    let ringing_invite = loop {
        if let Message::Request(r) = bob.recv().await
            && r.method == Method::Invite
        {
            bob.sock.send_to(&r.response(180).with_to_tag("bobtag2").to_bytes(), s.addr).await.unwrap();
            break r;
        }
    };
    loop {
        if let Message::Response(r) = alice.recv().await
            && r.status == 180
        {
            break;
        }
    }
    let mut cancel = Request::new(Method::Cancel, inv.uri.clone());
    for h in ["Via", "From", "To", "Call-ID", "Max-Forwards"] {
        cancel.headers.push(h, inv.headers.get(h).unwrap().to_owned());
    }
    cancel.headers.push("CSeq", format!("{} CANCEL", inv.cseq().unwrap().seq));
    alice.sock.send_to(&cancel.to_bytes(), s.addr).await.unwrap();
    // Bob sees the CANCEL, answers it and ends his INVITE with 487.
    loop {
        if let Message::Request(r) = bob.recv().await
            && r.method == Method::Cancel
        {
            bob.answer(&r, 200).await;
            let terminated = ringing_invite.response(487).with_to_tag("bobtag2");
            bob.sock.send_to(&terminated.to_bytes(), s.addr).await.unwrap();
            break;
        }
    }
    let mut statuses = Vec::new();
    while statuses.len() < 2 {
        if let Message::Response(r) = alice.recv().await
            && r.status >= 200
        {
            statuses.push((r.status, r.cseq().unwrap().method));
        }
    }
    statuses.sort_by_key(|(s, _)| *s);
    assert_eq!(statuses, vec![(200, Method::Cancel), (487, Method::Invite)]);
}

#[tokio::test]
async fn a_flood_from_one_source_does_not_hurt_others() {
    let s = server_with_rate(200).await;
    // The flood: 5,000 OPTIONS from 127.0.0.1 as fast as the socket goes.
    let flooder = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = flooder.local_addr().unwrap();
    let target = s.addr;
    let flood = tokio::spawn(async move {
        for i in 0..5000 {
            let raw = format!(
                "OPTIONS sip:litwareinc.com SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKflood{i}\r\nFrom: <sip:x@litwareinc.com>;tag=f\r\nTo: <sip:litwareinc.com>\r\nCall-ID: flood{i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            );
            let _ = flooder.send_to(raw.as_bytes(), target).await;
        }
        let mut answered = 0;
        let mut buf = vec![0u8; 4096];
        while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(300), flooder.recv(&mut buf)).await {
            answered += 1;
        }
        answered
    });
    // Meanwhile a user on another address registers and sends an IM as usual.
    let mut dave = Ua::bound("alice", s.addr, "127.0.0.2:0").await;
    assert_eq!(dave.register(600).await.status, 200);
    let answered = flood.await.unwrap();
    assert!(answered < 1000, "the flood was limited: {answered} of 5000 answered");
    // Kernel socket buffers drop some of a 5,000-datagram burst too; some answers must come.
    assert!(answered > 0, "the flooding source was still served within its allowance");
}

#[tokio::test]
async fn watcher_information_and_polite_blocking() {
    let s = server().await;
    let mut alice = Ua::new("alice", s.addr).await;
    let mut bob = Ua::new("bob", s.addr).await;
    let mut carol = Ua::new("carol", s.addr).await;
    for ua in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(ua.register(600).await.status, 200);
    }
    // Bob watches who watches him (RFC 3857); only his own presentity is allowed.
    let mut winfo = bob.request(Method::Subscribe, "sip:bob@litwareinc.com", "winfo-1");
    winfo.headers.push("Event", "presence.winfo");
    assert_eq!(bob.send(winfo).await.status, 200);
    let first = bob.recv_request(Method::Notify).await;
    assert_eq!(first.headers.get("Content-Type"), Some("application/watcherinfo+xml"));
    let mut other = alice.request(Method::Subscribe, "sip:bob@litwareinc.com", "winfo-2");
    other.headers.push("Event", "presence.winfo");
    assert_eq!(alice.send(other).await.status, 403);

    // Bob blocks Carol: she may subscribe but always sees him offline.
    sqlx::query("INSERT INTO presence_blocks (owner_aor, watcher_aor) VALUES ('sip:bob@litwareinc.com', 'sip:carol@litwareinc.com')")
        .execute(s.core_store().pool())
        .await
        .unwrap();
    let mut sub = carol.request(Method::Subscribe, "sip:bob@litwareinc.com", "sub-c");
    sub.headers.push("Event", "presence");
    assert_eq!(carol.send(sub).await.status, 200);
    let n = carol.recv_request(Method::Notify).await;
    assert!(String::from_utf8_lossy(&n.body).contains("<basic>closed</basic>"), "blocked watcher sees offline");

    // Alice subscribes normally and sees him online; Bob's watcher list names both watchers.
    let mut sub = alice.request(Method::Subscribe, "sip:bob@litwareinc.com", "sub-a");
    sub.headers.push("Event", "presence");
    assert_eq!(alice.send(sub).await.status, 200);
    let n = alice.recv_request(Method::Notify).await;
    assert!(String::from_utf8_lossy(&n.body).contains("<basic>open</basic>"));
    let mut seen = String::new();
    for _ in 0..3 {
        let n = bob.recv_request(Method::Notify).await;
        seen = String::from_utf8_lossy(&n.body).into_owned();
        if seen.contains("sip:alice@litwareinc.com") && seen.contains("sip:carol@litwareinc.com") {
            break;
        }
    }
    assert!(seen.contains("sip:alice@litwareinc.com") && seen.contains("sip:carol@litwareinc.com"), "{seen}");
}

#[tokio::test]
async fn watcher_subscribed_before_the_presentity_signs_in() {
    let s = server().await;
    let mut alice = Ua::new("alice", s.addr).await;
    let mut bob = Ua::new("bob", s.addr).await;
    assert_eq!(alice.register(600).await.status, 200);
    let mut sub = alice.request(Method::Subscribe, "sip:bob@litwareinc.com", "early-sub");
    sub.headers.push("Event", "presence");
    assert_eq!(alice.send(sub).await.status, 200);
    let n = alice.recv_request(Method::Notify).await;
    assert!(String::from_utf8_lossy(&n.body).contains("<basic>closed</basic>"));
    // Bob signs in and publishes at once (as baresip does): Alice must end up seeing him open.
    assert_eq!(bob.register(600).await.status, 200);
    let mut p = bob.request(Method::Publish, "sip:bob@litwareinc.com", "pub-early");
    p.headers.push("Event", "presence");
    p.headers.push("Content-Type", "application/pidf+xml");
    p.body = br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bob@litwareinc.com"><tuple id="a"><status><basic>open</basic></status></tuple></presence>"#.to_vec();
    assert_eq!(bob.send(p).await.status, 200);
    let mut open = false;
    for _ in 0..3 {
        let n = alice.recv_request(Method::Notify).await;
        if String::from_utf8_lossy(&n.body).contains("<basic>open</basic>") {
            open = true;
            break;
        }
    }
    assert!(open);
}

/// Sends a request as it is, without answering a challenge.
async fn send_once(ua: &Ua, req: &Request) {
    ua.sock.send_to(&req.to_bytes(), ua.server).await.unwrap();
}

/// Dispatch settles who sends and for whom before any handler runs, the same for every method:
/// the kind of challenge, the domain rule and the identity rules.
#[tokio::test]
async fn identity_rules_are_settled_at_dispatch() {
    let s = server().await;
    let mut alice = Ua::new("alice", s.addr).await;

    // Without credentials REGISTER is challenged with 401, every other request with 407.
    let r = alice.request(Method::Register, "sip:litwareinc.com", "id-1");
    send_once(&alice, &r).await;
    assert_eq!(alice.recv_response().await.status, 401);
    let m = alice.request(Method::Message, "sip:bob@litwareinc.com", "id-2");
    send_once(&alice, &m).await;
    assert_eq!(alice.recv_response().await.status, 407);

    // A REGISTER for an address of another domain: 404, without a challenge.
    let mut r = alice.request(Method::Register, "sip:litwareinc.com", "id-3");
    r.headers.set("To", "<sip:alice@fabrikam.com>");
    send_once(&alice, &r).await;
    let resp = alice.recv_response().await;
    assert_eq!(resp.status, 404);
    assert!(resp.reason.contains("not a user of this domain"), "{}", resp.reason);

    // Alice's credentials cannot register Bob.
    let mut r = alice.request(Method::Register, "sip:litwareinc.com", "id-4");
    r.headers.set("To", "<sip:bob@litwareinc.com>");
    let resp = alice.send(r).await;
    assert_eq!(resp.status, 403);
    assert!(resp.reason.contains("To does not match"), "{}", resp.reason);
    assert!(s.core.location.lookup("sip:bob@litwareinc.com").is_empty());

    // A sender outside the domain is refused before any challenge.
    let mut m = alice.request(Method::Message, "sip:bob@litwareinc.com", "id-5");
    m.headers.set("From", "<sip:alice@fabrikam.com>;tag=f");
    send_once(&alice, &m).await;
    let resp = alice.recv_response().await;
    assert_eq!(resp.status, 403);
    assert!(resp.reason.contains("not in this domain"), "{}", resp.reason);

    // Alice's credentials behind Bob's From: 403 for IM and presence alike.
    for method in [Method::Message, Method::Publish, Method::Subscribe] {
        let mut m = alice.request(method.clone(), "sip:carol@litwareinc.com", &format!("id-{method}"));
        m.headers.set("From", "<sip:bob@litwareinc.com>;tag=b");
        m.headers.push("Event", "presence");
        let resp = alice.send(m).await;
        assert_eq!(resp.status, 403, "{method}");
        assert!(resp.reason.contains("From does not match"), "{method}: {}", resp.reason);
    }
}

/// RFC 3261 routes to the Contact: a REGISTER from one port for a Contact at another reaches the
/// Contact; one whose Via shows a NAT is reached at its source; a target that never answers
/// gets the sender a final 408 before the sender's own timer gives up.
#[tokio::test]
async fn requests_go_to_the_contact_unless_a_nat_is_detected() {
    let s = server().await;
    let mut alice = Ua::new("alice", s.addr).await;
    let mut bob = Ua::new("bob", s.addr).await;
    let mut carol = Ua::new("carol", s.addr).await;
    let listener = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut r = alice.request(Method::Register, "sip:litwareinc.com", "reg-contact");
    r.headers.set("Contact", format!("<sip:alice@{}>", listener.local_addr().unwrap()));
    r.headers.push("Expires", "600");
    assert_eq!(alice.send(r).await.status, 200);
    let binding = s.core.location.lookup("sip:alice@litwareinc.com").remove(0);
    assert!(binding.by_contact, "a UDP REGISTER whose Via is its source is reached at its Contact");

    let mut m = bob.request(Method::Message, "sip:alice@litwareinc.com", "to-contact");
    m.body = b"at your contact".to_vec();
    let sent = bob.send(m);
    let at_contact = async {
        let mut buf = vec![0u8; 65536];
        let (n, from) =
            tokio::time::timeout(Duration::from_secs(5), listener.recv_from(&mut buf)).await.unwrap().unwrap();
        let Some(Message::Request(req)) = parse_datagram(&buf[..n], &Default::default()).unwrap() else { panic!() };
        listener.send_to(&req.response(200).with_to_tag("c").to_bytes(), from).await.unwrap();
        req
    };
    let (resp, got) = tokio::join!(sent, at_contact);
    assert_eq!(got.body, b"at your contact");
    assert_eq!(resp.status, 200, "the sender hears the contact's answer");

    // Carol's Via names a private address her packets do not come from: she is behind a NAT
    // and is reached where her REGISTER came from, not at the Contact she cannot be reached at.
    let mut r = carol.request(Method::Register, "sip:litwareinc.com", "reg-nat");
    r.headers.set("Contact", "<sip:carol@10.255.0.9:5060>");
    r.headers.push("Expires", "600");
    let mut r = carol.authorize(r).await;
    r.headers.set("Via", "SIP/2.0/UDP 10.255.0.9:5060;branch=z9hG4bKnat1;rport");
    send_once(&carol, &r).await;
    assert_eq!(carol.recv_response().await.status, 200);
    assert!(!s.core.location.lookup("sip:carol@litwareinc.com")[0].by_contact);
    let mut m = bob.request(Method::Message, "sip:carol@litwareinc.com", "to-nat");
    m.body = b"through the nat".to_vec();
    let (resp, got) = tokio::join!(bob.send(m), carol.recv_request(Method::Message));
    assert_eq!(resp.status, 200);
    assert_eq!(got.body, b"through the nat");

    // Alice's contact stops answering: Bob still gets a final response, 408, within 32 s.
    drop(listener);
    let m = bob.request(Method::Message, "sip:alice@litwareinc.com", "to-nowhere");
    let m = bob.authorize(m).await;
    send_once(&bob, &m).await;
    let started = std::time::Instant::now();
    let mut buf = vec![0u8; 65536];
    let timeout = loop {
        let n = tokio::time::timeout(Duration::from_secs(40), bob.sock.recv(&mut buf))
            .await
            .expect("a final response")
            .unwrap();
        if let Some(Message::Response(r)) = parse_datagram(&buf[..n], &Default::default()).unwrap()
            && r.status >= 200
        {
            break r;
        }
    };
    assert_eq!(timeout.status, 408);
    // Only the sender's own Via (with received/rport added), not the proxy's on top of it.
    assert_eq!(timeout.headers.values("Via").len(), 1, "{:?}", timeout.headers.values("Via"));
    let branch = timeout.top_via().ok().and_then(|v| v.branch().map(str::to_owned));
    assert_eq!(branch, m.branch(), "the 408 answers the sender's transaction");
    assert!(
        started.elapsed() < Duration::from_secs(32),
        "answered before the sender's timer F: {:?}",
        started.elapsed()
    );
}

/// NAT detection "never" reaches even Carol's Contact; "always" reaches Alice at her source.
#[tokio::test]
async fn nat_detection_is_configurable() {
    let policy = sip::SipPolicy { nat_detection: tandem_config::NatDetection::Always, ..Default::default() };
    let s = server_with_policy(0, policy).await;
    let mut alice = Ua::new("alice", s.addr).await;
    let mut r = alice.request(Method::Register, "sip:litwareinc.com", "reg-always");
    r.headers.set("Contact", "<sip:alice@127.0.0.1:9>");
    r.headers.push("Expires", "600");
    assert_eq!(alice.send(r).await.status, 200);
    assert!(!s.core.location.lookup("sip:alice@litwareinc.com")[0].by_contact);
    drop(s);

    let policy = sip::SipPolicy { nat_detection: tandem_config::NatDetection::Never, ..Default::default() };
    let s = server_with_policy(0, policy).await;
    let mut carol = Ua::new("carol", s.addr).await;
    let mut r = carol.request(Method::Register, "sip:litwareinc.com", "reg-never");
    r.headers.push("Expires", "600");
    let mut r = carol.authorize(r).await;
    r.headers.set("Via", "SIP/2.0/UDP 10.255.0.9:5060;branch=z9hG4bKnever;rport");
    send_once(&carol, &r).await;
    assert_eq!(carol.recv_response().await.status, 200);
    assert!(s.core.location.lookup("sip:carol@litwareinc.com")[0].by_contact);
    // An RFC 5626 flow is the source whatever the setting.
    let mut r = carol.request(Method::Register, "sip:litwareinc.com", "reg-ob");
    r.headers.set("Contact", "<sip:carol@127.0.0.1:9;ob>;reg-id=1;+sip.instance=\"<urn:uuid:1>\"");
    r.headers.push("Expires", "600");
    assert_eq!(carol.send(r).await.status, 200);
    let flows: Vec<bool> = s.core.location.lookup("sip:carol@litwareinc.com").iter().map(|b| b.by_contact).collect();
    assert!(flows.contains(&false), "{flows:?}");
}

/// An unknown user and a known one with a wrong password get the same answer, word for word, so
/// a 403 does not tell which accounts exist.
#[tokio::test]
async fn digest_refusals_do_not_tell_which_users_exist() {
    let s = server().await;
    let mut alice = Ua::new("alice", s.addr).await;
    alice.password = "not the password";
    let mut mallory = Ua::new("mallory", s.addr).await;
    let wrong = alice.register(600).await;
    let unknown = mallory.register(600).await;
    assert_eq!((wrong.status, unknown.status), (403, 403));
    assert_eq!(wrong.reason, unknown.reason);
    assert!(!wrong.reason.contains("password") && !unknown.reason.contains("user"), "{}", wrong.reason);
}

/// An OPTIONS over a stream connection, answered 200 when the connection is served.
async fn options_over(stream: &mut tokio::net::TcpStream, n: u32) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let local = stream.local_addr().unwrap();
    let raw = format!(
        "OPTIONS sip:litwareinc.com SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKtcp{n}-{}\r\nFrom: <sip:x@litwareinc.com>;tag=t\r\nTo: <sip:litwareinc.com>\r\nCall-ID: tcp{n}-{}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        local.port(),
        local.port()
    );
    if stream.write_all(raw.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => buf[..n].starts_with(b"SIP/2.0 200 "),
        _ => false,
    }
}

/// Whether the server closed a connection (read gives end of file) within `wait`.
async fn closed_within(stream: &mut tokio::net::TcpStream, wait: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(wait, stream.read(&mut buf)).await, Ok(Ok(0)) | Ok(Err(_)))
}

async fn connect_from(source: &str, server: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(server).await.unwrap()
}

/// Stream connections are capped per source address and per listener; a freed place is reused.
#[tokio::test]
async fn stream_connections_are_capped_per_source_and_listener() {
    let policy =
        sip::SipPolicy { max_stream_connections: 3, max_stream_connections_per_source: 2, ..Default::default() };
    let s = server_with_policy(0, policy).await;
    let tcp = s.core.settings.tcp;
    let mut a1 = connect_from("127.0.0.1", tcp).await;
    let mut a2 = connect_from("127.0.0.1", tcp).await;
    assert!(options_over(&mut a1, 1).await && options_over(&mut a2, 2).await);
    let mut a3 = connect_from("127.0.0.1", tcp).await;
    assert!(closed_within(&mut a3, Duration::from_secs(2)).await, "a third connection from one source is closed");
    let mut b1 = connect_from("127.0.0.2", tcp).await;
    assert!(options_over(&mut b1, 3).await, "another source is still served");
    let mut c1 = connect_from("127.0.0.3", tcp).await;
    assert!(closed_within(&mut c1, Duration::from_secs(2)).await, "the listener is full at 3");
    drop(a1);
    // The server notices the close on its next read; then the place is free again.
    let mut again = None;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut c = connect_from("127.0.0.3", tcp).await;
        if options_over(&mut c, 4).await {
            again = Some(c);
            break;
        }
    }
    assert!(again.is_some(), "a closed connection's place is given back");
    assert!(options_over(&mut a2, 5).await, "admitted connections are untouched");
}

/// An idle stream is closed after the configured time; one that sends RFC 5626 double-CRLF pings
/// gets a single CRLF pong for each and stays open.
#[tokio::test]
async fn idle_streams_close_and_crlf_keepalives_hold_them_open() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let policy = sip::SipPolicy { stream_idle_timeout: Duration::from_secs(1), ..Default::default() };
    let s = server_with_policy(0, policy).await;
    let tcp = s.core.settings.tcp;
    let mut idle = connect_from("127.0.0.1", tcp).await;
    let mut alive = connect_from("127.0.0.1", tcp).await;
    let started = std::time::Instant::now();
    for _ in 0..6 {
        alive.write_all(b"\r\n\r\n").await.unwrap();
        let mut pong = [0u8; 8];
        let n = tokio::time::timeout(Duration::from_secs(2), alive.read(&mut pong)).await.unwrap().unwrap();
        assert_eq!(&pong[..n], b"\r\n", "a double CRLF ping is answered with one CRLF");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert!(started.elapsed() > Duration::from_secs(2));
    assert!(closed_within(&mut idle, Duration::from_secs(1)).await, "the silent connection was closed");
    assert!(options_over(&mut alive, 6).await, "the kept-alive connection still works");
}

/// One user's presence subscriptions are capped (503 with Retry-After); others are not hurt.
/// Offline messages for one user are capped too (480 saying why), and so are a user's
/// registered endpoints (403, MaxEndpointsPerUser).
#[tokio::test]
async fn per_user_caps_on_subscriptions_and_offline_messages() {
    let policy = sip::SipPolicy {
        max_subscriptions_per_user: 2,
        max_offline_messages_per_user: 1,
        max_endpoints_per_user: 1,
        ..Default::default()
    };
    let s = server_with_policy(0, policy).await;
    let mut alice = Ua::new("alice", s.addr).await;
    let mut bob = Ua::new("bob", s.addr).await;
    assert_eq!(alice.register(600).await.status, 200);
    let subscribe = |ua: &mut Ua, target: &str, call: &str| {
        let mut sub = ua.request(Method::Subscribe, target, call);
        sub.headers.push("Event", "presence");
        sub
    };
    for (i, target) in ["sip:bob@litwareinc.com", "sip:carol@litwareinc.com"].iter().enumerate() {
        let sub = subscribe(&mut alice, target, &format!("cap-{i}"));
        assert_eq!(alice.send(sub).await.status, 200);
    }
    let sub = subscribe(&mut alice, "sip:alice@litwareinc.com", "cap-3");
    let refused = alice.send(sub).await;
    assert_eq!(refused.status, 503);
    assert!(refused.headers.get("Retry-After").is_some());
    assert!(refused.reason.contains("too many subscriptions"), "{}", refused.reason);
    assert_eq!(bob.register(600).await.status, 200);
    let sub = subscribe(&mut bob, "sip:alice@litwareinc.com", "cap-bob");
    assert_eq!(bob.send(sub).await.status, 200, "another user still subscribes");

    // Carol is offline: one message is kept, the next is refused with the reason.
    let m = alice.request(Method::Message, "sip:carol@litwareinc.com", "off-1");
    assert_eq!(alice.send(m).await.status, 202);
    let m = alice.request(Method::Message, "sip:carol@litwareinc.com", "off-2");
    let full = alice.send(m).await;
    assert_eq!(full.status, 480);
    assert!(full.reason.contains("offline message store full"), "{}", full.reason);

    // A second endpoint of alice's is one too many under MaxEndpointsPerUser 1; her first stays.
    let mut alice_again = Ua::new("alice", s.addr).await;
    // Branches are made from the name and CSeq: start past the first endpoint's.
    alice_again.cseq = 10_000;
    let second = alice_again.register(600).await;
    assert_eq!(second.status, 403);
    assert!(second.reason.contains("at most 1 registered endpoints"), "{}", second.reason);
    assert_eq!(s.core.location.lookup("sip:alice@litwareinc.com").len(), 1);
}

/// 200 wrong digest passwords for Alice lock her account (her right password is refused too,
/// with the same 403) and the attacking address, after back-off slowed the first guesses; Bob,
/// signing in from elsewhere meanwhile, is answered at once.
#[tokio::test]
async fn wrong_digest_passwords_lock_the_account_and_the_source() {
    let lockout = tandem_config::LockoutConfig {
        threshold: 5,
        source_threshold: 50,
        observation_window: Duration::from_secs(900),
        duration: Duration::from_secs(900),
    };
    let s = server_with_lockout(0, sip::SipPolicy::default(), lockout).await;
    let mut attacker = Ua::bound("alice", s.addr, "127.0.0.1:0").await;
    attacker.password = "guess";
    let started = std::time::Instant::now();
    let mut reasons = std::collections::HashSet::new();
    for _ in 0..200 {
        let r = attacker.register(600).await;
        assert_eq!(r.status, 403);
        reasons.insert(r.reason);
    }
    let attack = started.elapsed();
    assert!(attack >= Duration::from_millis(3500), "back-off slowed the first guesses: {attack:?}");
    assert_eq!(reasons.len(), 1, "wrong and locked read the same: {reasons:?}");

    // Locked: the right password is refused too, from any address, with the same answer.
    attacker.password = PASSWORD;
    let locked = attacker.register(600).await;
    assert_eq!(locked.status, 403);
    assert!(reasons.contains(&locked.reason));
    let mut alice_elsewhere = Ua::bound("alice", s.addr, "127.0.0.3:0").await;
    // Branches are made from the name and CSeq: start past the attacker's, or the server would
    // take these requests for retransmissions of its.
    alice_elsewhere.cseq = 10_000;
    assert_eq!(alice_elsewhere.register(600).await.status, 403, "the account is locked wherever it signs in");
    assert!(s.core.location.lookup("sip:alice@litwareinc.com").is_empty());
    // The attacking address is locked for every account.
    let mut carol_at_attacker = Ua::bound("carol", s.addr, "127.0.0.1:0").await;
    assert_eq!(carol_at_attacker.register(600).await.status, 403, "the source is locked out");

    // Bob, from another address, signs in and is answered at once.
    let mut bob = Ua::bound("bob", s.addr, "127.0.0.2:0").await;
    let t = std::time::Instant::now();
    assert_eq!(bob.register(600).await.status, 200);
    assert!(t.elapsed() < Duration::from_millis(500), "another user's SIP stays fast: {:?}", t.elapsed());
    assert!(s.core.directory().lockout().is_locked("alice"));
}

/// Overload control: past the queue-delay bound a new request gets 503 with Retry-After, while a
/// retransmission of a request answered before gets that answer again, OPTIONS is still answered,
/// and a request carried on in a dialog is not refused.
#[tokio::test]
async fn overload_refuses_new_work_but_replays_answers() {
    let s = server().await;
    let mut alice = Ua::new("alice", s.addr).await;
    let reg = alice.request(Method::Register, "sip:litwareinc.com", "reg-overload");
    alice.sock.send_to(&reg.to_bytes(), s.addr).await.unwrap();
    let challenge = alice.recv_response().await;
    assert_eq!(challenge.status, 401);

    // Every request now waits longer than the bound (a nanosecond).
    s.core.overload.set_max_delay(Duration::from_nanos(1));
    alice.sock.send_to(&reg.to_bytes(), s.addr).await.unwrap();
    let replayed = alice.recv_response().await;
    assert_eq!(replayed.status, 401, "a retransmission gets its answer again, not 503");
    assert_eq!(replayed.headers.get("WWW-Authenticate"), challenge.headers.get("WWW-Authenticate"));

    let fresh = alice.request(Method::Message, "sip:bob@litwareinc.com", "im-overload");
    alice.sock.send_to(&fresh.to_bytes(), s.addr).await.unwrap();
    let refused = alice.recv_response().await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.headers.get("Retry-After"), Some("1"));
    assert!(refused.to().unwrap().tag().is_some(), "a final response carries a To tag");
    // The refusal is the transaction's answer: its retransmission gets it again.
    alice.sock.send_to(&fresh.to_bytes(), s.addr).await.unwrap();
    assert_eq!(alice.recv_response().await.status, 503);

    let options = alice.request(Method::Options, "sip:127.0.0.1", "options-overload");
    alice.sock.send_to(&options.to_bytes(), s.addr).await.unwrap();
    assert_eq!(alice.recv_response().await.status, 200, "OPTIONS is not refused");
    let mut bye = alice.request(Method::Bye, "sip:bob@litwareinc.com", "dialog-overload");
    bye.headers.set("To", "<sip:bob@litwareinc.com>;tag=bob-tag");
    alice.sock.send_to(&bye.to_bytes(), s.addr).await.unwrap();
    assert_ne!(alice.recv_response().await.status, 503, "in-dialog requests are not refused");
    assert_eq!(s.core.overload.refused(), 1);

    // Back under the bound: handled again.
    s.core.overload.set_max_delay(Duration::from_millis(100));
    assert_eq!(alice.register(600).await.status, 200);
}

/// An in-dialog SUBSCRIBE (refresh or end) over the flow that made the subscription is the same
/// watcher and is answered at once; the same request from another address is challenged.
#[tokio::test]
async fn subscription_refreshes_over_their_own_flow_are_not_challenged() {
    let s = server().await;
    let mut alice = Ua::new("alice", s.addr).await;
    let mut bob = Ua::new("bob", s.addr).await;
    assert_eq!(bob.register(600).await.status, 200);
    let mut sub = alice.request(Method::Subscribe, "sip:bob@litwareinc.com", "sub-flow");
    sub.headers.push("Event", "presence");
    sub.headers.push("Expires", "600");
    let ok = alice.send(sub).await;
    assert_eq!(ok.status, 200);
    let tag = ok.to().unwrap().tag().unwrap().to_owned();
    fn refresh(ua: &mut Ua, tag: &str) -> Request {
        let mut r = ua.request(Method::Subscribe, "sip:bob@litwareinc.com", "sub-flow");
        r.headers.set("To", format!("<sip:bob@litwareinc.com>;tag={tag}"));
        r.headers.push("Event", "presence");
        r.headers.push("Expires", "600");
        r
    }
    let same = refresh(&mut alice, &tag);
    alice.sock.send_to(&same.to_bytes(), s.addr).await.unwrap();
    assert_eq!(alice.recv_response().await.status, 200, "over its own flow: no new challenge");

    let mut elsewhere = Ua::bound("alice", s.addr, "127.0.0.2:0").await;
    elsewhere.cseq = 100; // branches are made from the CSeq: not alice's earlier ones
    let moved = refresh(&mut elsewhere, &tag);
    elsewhere.sock.send_to(&moved.to_bytes(), s.addr).await.unwrap();
    assert_eq!(elsewhere.recv_response().await.status, 407, "from another address: challenged");
    // With credentials it is accepted from there too.
    let again = refresh(&mut elsewhere, &tag);
    assert_eq!(elsewhere.send(again).await.status, 200);
}
