//! SOAP Autodiscover requests: any bytes give a request or an error, never a panic, and a parsed
//! GetUserSettings renders to a response that parses again under the same limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_ews_proto::autodiscover::{self, Request, get_user_settings};
use tandem_xml::soap::Envelope;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = tandem_xml::parse(data, tandem_xml::Limits::default()) else { return };
    let Ok(env) = Envelope::of(&doc) else { return };
    if let Ok(Request::GetUserSettings(r)) = autodiscover::parse(&env) {
        let (known, errors) = get_user_settings::classify(&r.settings);
        let settings = known.iter().map(|k| (k.to_string(), r.mailboxes[0].clone().into())).collect();
        let body = get_user_settings::render(&[(get_user_settings::UserOutcome::Settings(settings), errors)]);
        let out = autodiscover::envelope("GetUserSettingsResponse", &body);
        assert!(tandem_xml::parse(out.as_bytes(), tandem_xml::Limits::default()).is_ok());
    }
});
