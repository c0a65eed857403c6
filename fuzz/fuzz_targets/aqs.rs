//! AQS query strings (FindItem QueryString, eDiscovery): never a panic, a plan stays within its
//! bound of branches, and whatever parses compiles to index expressions for both backends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_ews_proto::aqs;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(plan) = aqs::plan(s) {
        assert!(plan.branches.len() <= aqs::MAX_BRANCHES);
        for b in &plan.branches {
            assert!(b.text.is_some() || b.from.is_some() || b.until.is_some());
            if let Some(text) = &b.text {
                assert!(!aqs::to_fts5(text).is_empty());
                assert!(!aqs::to_tsquery(text).is_empty());
            }
        }
    }
});
