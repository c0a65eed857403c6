//! Auth metadata documents (`tandem-oauth`): never a panic; an accepted document has keys whose
//! x5t matches their certificate.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = tandem_oauth::metadata::parse(data) {
        assert!(!doc.keys.is_empty());
        for k in &doc.keys {
            assert_eq!(k.x5t, tandem_oauth::x5t(k.der()));
        }
    }
});
