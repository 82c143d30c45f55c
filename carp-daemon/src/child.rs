//! How the daemon starts other programs (up/down scripts, health checks):
//! the daemon's environment without its secrets, no real-time scheduling,
//! a process group of their own.
//!
//! - **Environment**: a child inherits the daemon's environment, as UCARP's
//!   scripts inherit UCARP's (systemd's `Environment=`, what an init script
//!   exports), minus
//!   - every variable the daemon reads a password from: `password_env`
//!     names are read through [`secret_var`], which records them, so that
//!     no child of the process ever sees one (the list only grows: a reload
//!     that stops using a variable does not make it harmless);
//!   - the service manager's messages to the daemon itself
//!     ([`SERVICE_MANAGER`]: `NOTIFY_SOCKET`, `WATCHDOG_*`, `LISTEN_*`),
//!     with which a child could speak for the daemon; UCARP, a simple
//!     service, is never given them.
//!
//!   Callers add their own (`CARP_*` for scripts). A `password_env` naming a
//!   variable every child needs ([`PASSED_ON`]) is refused when the
//!   configuration is read (`config/password.rs`).
//! - **Scheduling**: the daemon may run SCHED_FIFO/SCHED_RR
//!   ([`crate::realtime`], or systemd's `CPUSchedulingPolicy=`); the child is
//!   put back to SCHED_OTHER between fork and exec, so a script or a check in
//!   a busy loop cannot starve the machine, nor the daemon. Its
//!   `RLIMIT_RTTIME` (which the daemon may lower for itself) is put back to
//!   what the daemon inherited ([`record_inherited_limits`]), so a service a
//!   script starts with real-time scheduling is not killed by the daemon's
//!   guard.
//! - **Process group**: the child leads its own group, so a timeout can kill
//!   everything it started; a child dropped before it was waited for (the
//!   daemon exiting while a script runs) has its whole group killed
//!   ([`GroupChild`]).

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, OnceLock};

/// Variables every child needs, by exact name (`LC_*` too): a password may
/// not be read from one of them, since hiding it would break the children.
pub const PASSED_ON: [&str; 4] = ["PATH", "LANG", "TZ", "HOME"];

/// The service manager's variables addressed to the daemon's own process
/// (sd_notify socket, watchdog, socket activation), never passed on.
pub const SERVICE_MANAGER: [&str; 6] = [
    "NOTIFY_SOCKET",
    "WATCHDOG_PID",
    "WATCHDOG_USEC",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
];

/// Names of the variables the daemon read a password from. The
/// environment is the process's, so is the list of its secrets.
static SECRETS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// `RLIMIT_RTTIME` as the daemon inherited it, before it set its own.
static INHERITED_RTTIME: OnceLock<libc::rlimit> = OnceLock::new();

/// Whether `name` is one every child needs (see [`PASSED_ON`]).
pub fn passed_on(name: &str) -> bool {
    PASSED_ON.contains(&name) || name.starts_with("LC_")
}

/// Reads variable `var` of the daemon's environment as a password, and
/// records it so that no child is ever given it.
pub fn secret_var(var: &str) -> Option<OsString> {
    hide(var);
    std::env::var_os(var)
}

/// Records `var` as carrying a secret: children no longer inherit it.
pub fn hide(var: &str) {
    // A poisoned lock only means a panic while inserting into a set.
    let mut secrets = SECRETS.lock().unwrap_or_else(|p| p.into_inner());
    if !secrets.contains(var) {
        secrets.insert(var.to_owned());
    }
}

/// Whether variable `name` of the daemon's environment is inherited by
/// children: neither a secret nor the service manager's.
pub fn inherited(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        // Not a name the daemon could have read a password from.
        return true;
    };
    let secrets = SECRETS.lock().unwrap_or_else(|p| p.into_inner());
    !secrets.contains(name) && !SERVICE_MANAGER.contains(&name)
}

/// Remembers the daemon's `RLIMIT_RTTIME` as inherited, for its children.
/// Call once at start, before [`crate::realtime::apply`] changes it.
pub fn record_inherited_limits() -> io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_RTTIME, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let _ = INHERITED_RTTIME.set(limit);
    Ok(())
}

/// A command for `program` with the daemon's environment minus secrets,
/// its own process group, and SCHED_OTHER and the inherited
/// `RLIMIT_RTTIME` after fork.
pub fn command(program: impl AsRef<OsStr>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear()
        .envs(std::env::vars_os().filter(|(name, _)| inherited(name)))
        .process_group(0);
    let rttime = INHERITED_RTTIME.get().copied();
    // SAFETY: the closure runs in the forked child before exec and only
    // makes the async-signal-safe system calls sched_getscheduler,
    // sched_setscheduler, getrlimit and setrlimit on values it owns; it
    // allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            reset_scheduling()?;
            if let Some(limit) = rttime {
                restore_rttime(limit);
            }
            Ok(())
        });
    }
    cmd
}

/// Puts the calling thread back to SCHED_OTHER (priority 0) if it runs a
/// real-time policy. Called in the child between fork and exec.
fn reset_scheduling() -> io::Result<()> {
    // SAFETY: sched_getscheduler reads the policy of the calling thread.
    let policy = unsafe { libc::sched_getscheduler(0) };
    if policy < 0 {
        return Err(io::Error::last_os_error());
    }
    if policy & !libc::SCHED_RESET_ON_FORK == libc::SCHED_OTHER {
        return Ok(());
    }
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param for the duration of the call;
    // lowering one's own policy needs no privilege.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets `RLIMIT_RTTIME` back to `limit` in the child between fork and
/// exec. Raising a hard limit the daemon lowered needs CAP_SYS_RESOURCE;
/// without it the soft limit is raised to the hard one, the most the child
/// can get. Never fails: a script is better run with the daemon's limit
/// than not at all.
fn restore_rttime(limit: libc::rlimit) {
    // SAFETY: `limit` is a valid rlimit for the duration of the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_RTTIME, &limit) } == 0 {
        return;
    }
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `current` is a valid rlimit to fill, then to pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_RTTIME, &mut current) == 0 {
            current.rlim_cur = current.rlim_max;
            libc::setrlimit(libc::RLIMIT_RTTIME, &current);
        }
    }
}

/// A started child that leads its own process group ([`command`]). Dropped
/// before it was waited for (its task aborted, the daemon exiting), it
/// takes its whole group with it: SIGKILL to the group, not only to the
/// child, so nothing a script started while it was cut short is left
/// behind. A child that was waited for (reaped) is left alone with what it
/// left running, as a script that starts a service means to.
#[derive(Debug)]
pub struct GroupChild(tokio::process::Child);

impl GroupChild {
    /// Wraps `child`, started from a [`command`].
    pub fn new(child: tokio::process::Child) -> GroupChild {
        GroupChild(child)
    }

    /// Sends SIGKILL to the child's process group, unless the child was
    /// reaped already (its id might then belong to another process).
    pub fn kill_group(&self) {
        if let Some(pid) = self.0.id().and_then(|p| libc::pid_t::try_from(p).ok()) {
            // SAFETY: kill(2) on the group the unreaped child leads; no
            // memory involved.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    }
}

impl Deref for GroupChild {
    type Target = tokio::process::Child;

    fn deref(&self) -> &tokio::process::Child {
        &self.0
    }
}

impl DerefMut for GroupChild {
    fn deref_mut(&mut self) -> &mut tokio::process::Child {
        &mut self.0
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        // tokio's Child::id is None once the child was reaped.
        self.kill_group();
    }
}

/// Whether `pid` is a live (not zombie) `sleep`: the background process
/// the tests of children leave in a group. A killed process can be
/// runnable for a moment before it exits, so callers wait for this to turn
/// false.
#[cfg(test)]
pub(crate) fn sleep_alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
    comm.trim() == "sleep" && !matches!(state, None | Some('Z') | Some('X'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needed_and_service_manager_variables() {
        for name in ["PATH", "LANG", "LC_ALL", "LC_TIME", "TZ", "HOME"] {
            assert!(passed_on(name), "{name}");
        }
        for name in ["CARPD_PASS", "LANGUAGE_X", "path", "SITE"] {
            assert!(!passed_on(name), "{name}");
        }
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS"] {
            assert!(!inherited(OsStr::new(name)), "{name}");
        }
        for name in ["SITE", "LD_LIBRARY_PATH", "RUST_LOG", "CARP_SITE", "PATH"] {
            assert!(inherited(OsStr::new(name)), "{name}");
        }
        hide("CHILD_TEST_SECRET");
        assert!(!inherited(OsStr::new("CHILD_TEST_SECRET")));
    }

    #[tokio::test]
    async fn children_inherit_the_environment_but_no_secret() {
        // cargo runs tests with CARGO_* variables set: one becomes a
        // "password" variable, the others must pass.
        let secret = "CARGO_PKG_NAME";
        let value = std::env::var(secret).expect("cargo sets CARGO_PKG_NAME");
        assert_eq!(secret_var(secret).unwrap(), OsStr::new(&value));
        let ours: Vec<String> = std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| k != secret && !SERVICE_MANAGER.contains(&k.as_str()))
            .collect();
        assert!(ours.iter().any(|k| k.starts_with("CARGO_")), "{ours:?}");
        let out = command("env").output().await.unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            !text.lines().any(|l| l.starts_with(&format!("{secret}="))),
            "{secret} leaked into the child: {text}"
        );
        for name in &ours {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{name}="))),
                "{name} was not passed on: {text}"
            );
        }
    }

    #[tokio::test]
    async fn children_lead_their_own_process_group() {
        let out = command("sh")
            .args(["-c", "echo $$ $(cut -d' ' -f5 /proc/$$/stat)"])
            .output()
            .await
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let ids: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(ids.len(), 2, "{text}");
        assert_eq!(ids[0], ids[1], "pid and process group differ: {text}");
    }

    /// Starts `sh` running a background `sleep 300` and `then`; returns the
    /// child and the sleep's pid.
    async fn with_background_sleep(then: &str) -> (GroupChild, i32) {
        use tokio::io::AsyncBufReadExt;
        let mut child = GroupChild::new(
            command("sh")
                .args(["-c", &format!("sleep 300 & echo $!; {then}")])
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap(),
        );
        let mut line = String::new();
        tokio::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .await
            .unwrap();
        (child, line.trim().parse().unwrap())
    }

    #[tokio::test]
    async fn a_child_dropped_unwaited_takes_its_group_along() {
        let (child, sleep) = with_background_sleep("wait").await;
        // `$!` is printed as soon as sh has forked: the sleep may not have
        // been exec'd yet.
        let started = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !sleep_alive(sleep) && std::time::Instant::now() < started {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(sleep_alive(sleep), "the group's sleep {sleep} never ran");
        drop(child);
        // SIGKILL was sent to the group; the sleep is gone (or a zombie)
        // once the kernel has delivered it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while sleep_alive(sleep) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(!sleep_alive(sleep), "the group's sleep {sleep} survived");
    }

    #[tokio::test]
    async fn a_child_waited_for_leaves_what_it_started() {
        let (mut child, sleep) = with_background_sleep("exit 0").await;
        assert!(child.wait().await.unwrap().success());
        drop(child);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let alive = sleep_alive(sleep);
        // SAFETY: kill(2) on the test's own background sleep.
        unsafe { libc::kill(sleep, libc::SIGKILL) };
        assert!(alive, "a reaped child's background process was killed");
    }

    #[test]
    fn children_of_a_real_time_thread_run_sched_other() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: SCHED_FIFO needs root (CAP_SYS_NICE)");
            return;
        }
        // As systemd's CPUSchedulingPolicy=fifo leaves it: SCHED_FIFO
        // without SCHED_RESET_ON_FORK, on a thread of its own.
        let (plain, ours) = std::thread::spawn(|| {
            let param = libc::sched_param { sched_priority: 3 };
            // SAFETY: valid sched_param; pid 0 is this thread.
            let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
            assert_eq!(rc, 0, "{}", io::Error::last_os_error());
            let policy_of = |out: std::process::Output| {
                String::from_utf8(out.stdout).unwrap().trim().to_owned()
            };
            let script = "grep ^policy /proc/self/sched | tr -s ' ' | cut -d' ' -f3";
            let plain = std::process::Command::new("sh")
                .args(["-c", script])
                .output()
                .unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let ours = rt
                .block_on(async { command("sh").args(["-c", script]).output().await })
                .unwrap();
            (policy_of(plain), policy_of(ours))
        })
        .join()
        .unwrap();
        assert_eq!(plain, "1", "a plain child inherits SCHED_FIFO");
        assert_eq!(ours, "0", "our child must run SCHED_OTHER");
    }
}
