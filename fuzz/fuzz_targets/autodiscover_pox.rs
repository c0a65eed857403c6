//! POX Autodiscover requests: any bytes give a request or a 600/601 error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_ews_proto::pox::Request;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = tandem_xml::parse(data, tandem_xml::Limits::default()) {
        let _ = Request::parse(&doc);
    }
});
