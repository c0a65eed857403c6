//! XCAP (RFC 4825) for resource lists: the request-URI reader, the document reader and the
//! entry reader must never panic, stay within their limits, and read back what they write.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_sip_proto::xcap::{Document, Entry, MAX_ENTRIES, MAX_LISTS, Target};

fuzz_target!(|data: &[u8]| {
    if let Ok(path) = std::str::from_utf8(data)
        && let Ok(t) = Target::parse(path)
    {
        assert_eq!(Target::parse(&t.to_path()).expect("a written path reads back"), t);
    }
    if let Ok(doc) = Document::parse(data) {
        assert!(doc.lists.len() <= MAX_LISTS);
        assert!(doc.lists.iter().map(|l| l.entries.len()).sum::<usize>() <= MAX_ENTRIES);
        assert_eq!(Document::parse(doc.render().as_bytes()).expect("a rendered document reads back"), doc);
    }
    if let Ok(e) = Entry::parse_element(data) {
        assert_eq!(Entry::parse_element(e.render_element().as_bytes()).expect("an entry reads back"), e);
    }
});
