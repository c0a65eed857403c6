//! `tandem.toml` parsing: any text gives a Config or a ConfigError, never a panic, and an accepted
//! configuration written back parses to the same value.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tandem_config::{Config, Overrides};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(cfg) = Config::parse(text, "fuzz.toml", Path::new("/fuzz"), &Overrides::default()) {
        let again = Config::parse(&cfg.to_toml(), "again.toml", Path::new("/fuzz"), &Overrides::default());
        assert_eq!(again.ok().as_ref(), Some(&cfg));
    }
});
