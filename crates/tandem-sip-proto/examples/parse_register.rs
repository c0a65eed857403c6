//! The per-message parsing cost of the registrar's hottest request, for instruction counts:
//! parses a digest REGISTER as SIPp sends it, reads what the dispatcher and registrar read
//! (branch, top Via, Call-ID, From, To, CSeq) and writes a 200, `N` times (default 1,000).
//!
//! `cargo build --release -p tandem-sip-proto --example parse_register &&
//!  valgrind --tool=callgrind target/release/examples/parse_register 1000` — divide the total by
//! N (docs/BENCHMARKS.md records the figure). Instruction counts do not depend on the machine's
//! load, unlike times.

use tandem_sip_proto::{HeaderView, Limits, Message, parse_datagram};

fn main() {
    let msg = b"REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-1234-1-0;rport\r\nMax-Forwards: 70\r\nFrom: <sip:user0001@litwareinc.com>;tag=1234SIPpTag001\r\nTo: <sip:user0001@litwareinc.com>\r\nCall-ID: 1-1234@127.0.0.1\r\nCSeq: 2 REGISTER\r\nContact: <sip:user0001@127.0.0.1:6000;transport=UDP>\r\nExpires: 3600\r\nUser-Agent: SIPp tandem-bench\r\nAuthorization: Digest username=\"user0001\",realm=\"litwareinc.com\",uri=\"sip:127.0.0.1:5060\",nonce=\"abcdefabcdefabcdefabcdef0123456789\",response=\"0123456789abcdef0123456789abcdef\",algorithm=MD5\r\nContent-Length: 0\r\n\r\n";
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let limits = Limits::default();
    let mut total = 0usize;
    for _ in 0..n {
        // A fixed, well-formed message: a failure here is a parser regression worth a panic.
        let m = parse_datagram(msg, &limits).expect("a well-formed REGISTER").expect("not a keep-alive");
        if let Message::Request(r) = &m {
            total += r.branch().map_or(0, |b| b.len());
            total += r.top_via().map(|_| 1).unwrap_or(0);
            total += r.call_id().map_or(0, |c| c.len());
            total += r.from().map(|_| 1).unwrap_or(0);
            total += r.to().map(|_| 1).unwrap_or(0);
            total += r.cseq().map_or(0, |c| usize::try_from(c.seq).unwrap_or(0));
            let resp = r.response(200);
            total += resp.to_bytes().len();
        }
    }
    println!("{total}");
}
