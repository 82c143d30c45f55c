//! What the daemon needs from the system before it starts, checked at once
//! so that a daemon started without it says so in the first line of its
//! error instead of failing half-way (an advert socket refused after the
//! receive path was set up, or a master that cannot add its VIPs).
//!
//! Needed: CAP_NET_ADMIN (add and remove the VIPs, attach XDP), CAP_NET_RAW
//! (send adverts, gratuitous ARPs) and write access to the directories of
//! the status socket and of `state_dir`. Root has all of them; so has the
//! shipped systemd unit (`dist/carpd-xdp.service`). CAP_BPF and
//! CAP_PERFMON, or CAP_SYS_ADMIN, are needed for the XDP receive path only:
//! without them the daemon runs with its fallback receive path (and says
//! so), so they are named in the error when something else is missing, but
//! never refused alone.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Capability numbers (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
/// Raw and packet sockets.
const CAP_NET_RAW: u32 = 13;
/// The catch-all, also enough to load eBPF programs.
const CAP_SYS_ADMIN: u32 = 21;
/// Performance monitoring, with CAP_BPF enough for XDP programs.
const CAP_PERFMON: u32 = 38;
/// Loading eBPF programs and creating maps.
const CAP_BPF: u32 = 39;

/// Errors of the start-up privilege check.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// Something the daemon needs is missing.
    #[error(
        "missing privileges (uid {uid}): {missing}{xdp}; run carpd-xdp as root, or with \
         these (systemd: AmbientCapabilities=, see dist/carpd-xdp.service)"
    )]
    Missing {
        /// The effective user id.
        uid: u32,
        /// What is missing and what for, comma-separated.
        missing: String,
        /// The XDP receive path's capabilities when they are missing too.
        xdp: &'static str,
    },
}

/// What the process has, as far as the check is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Privileges {
    /// Effective user id.
    pub uid: u32,
    /// Effective capability set (bit n: capability n); `None` when it
    /// cannot be read (no /proc): nothing is refused then.
    pub caps: Option<u64>,
}

impl Privileges {
    /// The calling process's.
    pub fn current() -> Privileges {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        let caps = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| effective_caps(&s));
        Privileges { uid, caps }
    }

    /// Whether capability `cap` is effective (true when unknown).
    fn has(&self, cap: u32) -> bool {
        self.caps.is_none_or(|c| c & (1 << cap) != 0)
    }
}

/// The `CapEff` set of a `/proc/<pid>/status` text.
pub fn effective_caps(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Checks that a daemon with `privileges` can run with its status socket
/// at `status_socket` and its state in `state_dir`; `writable` tells
/// whether the process may create files in a directory.
pub fn check_with(
    privileges: &Privileges,
    status_socket: &Path,
    state_dir: &Path,
    writable: &dyn Fn(&Path) -> bool,
) -> Result<(), PrivilegeError> {
    let mut missing: Vec<String> = [
        (CAP_NET_ADMIN, "CAP_NET_ADMIN (to add the VIPs)"),
        (CAP_NET_RAW, "CAP_NET_RAW (to send adverts)"),
    ]
    .iter()
    .filter(|(cap, _)| !privileges.has(*cap))
    .map(|(_, what)| (*what).to_owned())
    .collect();
    let socket_dir = status_socket.parent().unwrap_or(Path::new("/"));
    for (dir, what) in [(socket_dir, "status socket"), (state_dir, "state_dir")] {
        let existing = nearest_existing(dir);
        if !writable(&existing) {
            missing.push(format!("write access to {} ({what})", existing.display()));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let bpf =
        privileges.has(CAP_SYS_ADMIN) || (privileges.has(CAP_BPF) && privileges.has(CAP_PERFMON));
    Err(PrivilegeError::Missing {
        uid: privileges.uid,
        missing: missing.join(", "),
        xdp: if bpf {
            ""
        } else {
            " (and CAP_BPF with CAP_PERFMON, or CAP_SYS_ADMIN, for the XDP receive path)"
        },
    })
}

/// [`check_with`] for the calling process and the real file system.
pub fn check(status_socket: &Path, state_dir: &Path) -> Result<(), PrivilegeError> {
    check_with(
        &Privileges::current(),
        status_socket,
        state_dir,
        &may_create_in,
    )
}

/// `dir`, or its nearest ancestor that exists (the daemon creates the
/// rest).
fn nearest_existing(dir: &Path) -> PathBuf {
    let mut dir = dir;
    while !dir.exists() {
        match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => dir = parent,
            _ => return PathBuf::from("."),
        }
    }
    dir.to_owned()
}

/// Whether the process may create entries in `dir` (write and search
/// permission, for its effective ids and capabilities).
fn may_create_in(dir: &Path) -> bool {
    let Ok(path) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `path` is a valid NUL-terminated string for the call.
    unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        ) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT_CAPS: u64 = 0x1ff_ffff_ffff;

    /// The check with the status socket in `dir` and the state in
    /// `dir/state/deeper` (not there yet: `dir` is asked).
    fn check_in(dir: &Path, p: &Privileges, writable: bool) -> Result<(), PrivilegeError> {
        check_with(
            p,
            &dir.join("carpd-xdp.sock"),
            &dir.join("state/deeper"),
            &|_| writable,
        )
    }

    #[test]
    fn root_and_the_units_capabilities_pass() {
        let dir = tempfile::tempdir().unwrap();
        let root = Privileges {
            uid: 0,
            caps: Some(ROOT_CAPS),
        };
        check_in(dir.path(), &root, true).unwrap();
        let unit = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW) | (1 << CAP_BPF) | (1 << CAP_PERFMON);
        let p = Privileges {
            uid: 0,
            caps: Some(unit),
        };
        check_in(dir.path(), &p, true).unwrap();
        // Without the eBPF ones the fallback receive path runs: no refusal.
        let p = Privileges {
            uid: 998,
            caps: Some((1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW)),
        };
        check_in(dir.path(), &p, true).unwrap();
        // Unknown capabilities: nothing refused on their account.
        check_in(dir.path(), &Privileges { uid: 0, caps: None }, true).unwrap();
    }

    #[test]
    fn a_plain_user_is_told_everything_that_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let user = Privileges {
            uid: 1000,
            caps: Some(0),
        };
        assert_eq!(
            check_in(dir.path(), &user, false).unwrap_err().to_string(),
            format!(
                "missing privileges (uid 1000): CAP_NET_ADMIN (to add the VIPs), CAP_NET_RAW \
                 (to send adverts), write access to {d} (status socket), write access to {d} \
                 (state_dir) (and CAP_BPF with CAP_PERFMON, or CAP_SYS_ADMIN, for the XDP \
                 receive path); run carpd-xdp as root, or with these (systemd: \
                 AmbientCapabilities=, see dist/carpd-xdp.service)"
            )
        );
        // Root without CAP_NET_RAW but with the eBPF ones: only that.
        let p = Privileges {
            uid: 0,
            caps: Some(ROOT_CAPS & !(1 << CAP_NET_RAW)),
        };
        assert_eq!(
            check_in(dir.path(), &p, true).unwrap_err().to_string(),
            "missing privileges (uid 0): CAP_NET_RAW (to send adverts); run carpd-xdp as \
             root, or with these (systemd: AmbientCapabilities=, see dist/carpd-xdp.service)"
        );
    }

    #[test]
    fn caps_are_read_from_proc_status() {
        let status = "Name:\tx\nCapPrm:\t0000000000003000\nCapEff:\t0000000000001000\n";
        assert_eq!(effective_caps(status), Some(1 << CAP_NET_ADMIN));
        assert_eq!(effective_caps("Name:\tx\n"), None);
    }
}
