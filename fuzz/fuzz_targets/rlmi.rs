//! RFC 4662 resource-list notifications: the multipart/related reader and the RLMI reader must
//! never panic, stay within their limits, and read back what they write.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_sip_proto::rlmi;

fuzz_target!(|data: &[u8]| {
    let (ct, body) = match data.iter().position(|b| *b == b'\n') {
        Some(n) => (String::from_utf8_lossy(&data[..n]).into_owned(), &data[n + 1..]),
        None => ("multipart/related;boundary=\"b\"".to_owned(), data),
    };
    if let Ok(parts) = rlmi::parse_multipart(&ct, body) {
        assert!(parts.len() <= rlmi::MAX_PARTS);
    }
    if let Ok(list) = rlmi::parse(data) {
        assert!(list.resources.len() <= rlmi::MAX_RESOURCES);
        let again = rlmi::parse(&list.render()).expect("a rendered list reads back");
        assert_eq!(again.resources.len(), list.resources.len());
    }
});
