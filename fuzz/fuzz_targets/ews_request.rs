//! EWS requests: any bytes give a parsed operation or a protocol error (ErrorSchemaValidation,
//! ErrorInvalidRequest…), never a panic; restrictions are depth-limited.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_xml::soap::Envelope;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = tandem_xml::parse(data, tandem_xml::Limits::default()) else { return };
    let Ok(env) = Envelope::of(&doc) else { return };
    if let Err(e) = tandem_ews_proto::ops::parse(&env) {
        let fault = tandem_ews_proto::render::fault(e.code, &e.message);
        assert!(tandem_xml::parse(fault.as_bytes(), tandem_xml::Limits::default()).is_ok());
    }
});
