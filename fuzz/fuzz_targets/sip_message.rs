//! SIP parsing (`tandem-sip-proto`): any bytes, as a datagram or as a stream cut in two, give a
//! message, a rejection or a wait for more, never a panic; and an accepted message written back
//! with `to_bytes` parses to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_sip_proto::{Limits, Message, StreamItem, StreamParser, parse_datagram};

/// `to_bytes` writes Content-Length from the body (where the first one was, or last), so
/// `Content-Length: 00` comes back as `0` and a message that had none gains one: the only
/// difference a write-back may make.
fn with_content_length(mut m: Message) -> Message {
    match &mut m {
        Message::Request(r) => r.headers.set("Content-Length", r.body.len().to_string()),
        Message::Response(r) => r.headers.set("Content-Length", r.body.len().to_string()),
    }
    m
}

fn round_trip(m: Message, limits: &Limits) {
    let bytes = m.to_bytes();
    let again = parse_datagram(&bytes, limits);
    let again = match again {
        Ok(Some(again)) => again,
        other => panic!("written back as {:?}, parsed as {other:?}", String::from_utf8_lossy(&bytes)),
    };
    assert_eq!(again, with_content_length(m), "written back as {:?}", String::from_utf8_lossy(&bytes));
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(Some(m)) = parse_datagram(data, &limits) {
        round_trip(m, &limits);
    }

    // A stream delivering the same bytes in two pieces, cut where the first byte says.
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut stream = StreamParser::new(limits);
    stream.push(&data[..cut]);
    let mut items = Vec::new();
    while let Ok(Some(item)) = stream.next_item() {
        items.push(item);
    }
    stream.push(&data[cut..]);
    // A rejection with a reply consumed the bad message: carry on, as a transport does.
    for _ in 0..64 {
        match stream.next_item() {
            Ok(Some(item)) => items.push(item),
            Err(rejected) if rejected.reply.is_some() => continue,
            _ => break,
        }
    }
    for item in items {
        if let StreamItem::Message(m) = item {
            round_trip(*m, &limits);
        }
    }
});
