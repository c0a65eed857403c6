//! RFC 3842 message summaries: the reader must never panic, stay within its limits, and read
//! back what it writes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_sip_proto::message_summary;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = message_summary::parse(data) {
        assert!(s.lines.len() <= message_summary::MessageClass::ALL.len());
        let again = message_summary::parse(s.render().as_bytes()).expect("a rendered summary reads back");
        assert_eq!(again.messages_waiting, s.messages_waiting);
        assert_eq!(again.lines, s.lines);
    }
});
