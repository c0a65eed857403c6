//! S2S tokens (`tandem-oauth`): never a panic, and with no trusted partner nothing validates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_oauth::token::{ValidationPolicy, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let policy = ValidationPolicy::new(
        tandem_oauth::EXCHANGE_APP_ID,
        vec!["mail.litwareinc.com".into()],
        vec!["litwareinc.com".into()],
        vec!["litwareinc.com".into()],
    );
    let result = validate(s, &policy, &[], 1_800_000_000);
    assert!(result.is_err());
    if let Err(e) = result {
        let _ = e.diagnostic();
    }
});
