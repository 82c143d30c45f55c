//! What `check-config` checks on the host besides the file itself: the
//! interfaces, scripts and health-check programs the file names. None of
//! these stops the daemon (an interface may appear later, a script may be
//! installed later), so each is a warning, located like an error.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::error::At;
use super::model::ConfigWarning;

fn warn(warnings: &mut Vec<ConfigWarning>, at: &At, message: String) {
    warnings.push(ConfigWarning {
        at: at.to_string(),
        message,
    });
}

/// Warns when no interface named `name` exists in this network namespace.
pub fn check_interface(name: &str, at: &At, warnings: &mut Vec<ConfigWarning>) {
    let Ok(c_name) = CString::new(name) else {
        return;
    };
    // SAFETY: c_name is a valid NUL-terminated string.
    if unsafe { libc::if_nametoindex(c_name.as_ptr()) } == 0 {
        warn(
            warnings,
            at,
            format!(
                "no interface named {name} on this host (yet): the daemon waits for it in INIT \
                 and starts the instance when it appears"
            ),
        );
    }
}

/// Why `path` cannot be run, if it cannot.
fn not_runnable(path: &Path) -> Option<String> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(format!("{} does not exist", path.display()))
        }
        Err(e) => return Some(format!("{} cannot be read: {e}", path.display())),
    };
    if !meta.is_file() {
        return Some(format!("{} is not a regular file", path.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Some(format!(
            "{} is not executable (chmod +x {})",
            path.display(),
            path.display()
        ));
    }
    None
}

/// Warns when an up/down script is missing or cannot be run.
pub fn check_script(path: &Path, at: &At, warnings: &mut Vec<ConfigWarning>) {
    if let Some(why) = not_runnable(path) {
        warn(
            warnings,
            at,
            format!("{why}: the script will fail each time it is run"),
        );
    }
}

/// Warns when a health-check program is missing or cannot be run: a path
/// (with a `/`) as it is, a bare name searched in `PATH`.
pub fn check_program(program: &str, at: &At, warnings: &mut Vec<ConfigWarning>) {
    let why = if program.contains('/') {
        not_runnable(Path::new(program))
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let found = std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .any(|candidate: PathBuf| not_runnable(&candidate).is_none());
        (!found).then(|| format!("{program} is not found in PATH"))
    };
    if let Some(why) = why {
        warn(
            warnings,
            at,
            format!("{why}: the health check will fail and demote this host"),
        );
    }
}
