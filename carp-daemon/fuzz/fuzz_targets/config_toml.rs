//! The TOML configuration loader on any text: a valid configuration or an
//! error naming where, never a panic. Every password variable is set, so
//! inputs get past the environment to the checks behind it; a configuration
//! loaded is printed (`check-config`) and loads again to the same model.
#![no_main]

use std::ffi::OsString;
use std::path::Path;

use carp_daemon::config;
use libfuzzer_sys::fuzz_target;

fn env(_: &str) -> Option<OsString> {
    Some(OsString::from("fuzz-password"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/carpd-xdp/fuzz.toml");
    match config::parse_str(text, path, &env) {
        Ok(loaded) => {
            assert!(!loaded.instances.is_empty());
            let _ = config::render(&loaded);
            let again = config::parse_str(text, path, &env).expect("loads twice");
            assert_eq!(again, loaded);
        }
        Err(e) => {
            let message = e.to_string();
            // Every error names the file (and the line and field).
            assert!(message.starts_with("/etc/carpd-xdp/fuzz.toml:"), "{message}");
        }
    }
});
