//! How the daemon starts other programs (up/down scripts, health checks):
//! a clean environment, no real-time priority, a process group of their own.
//!
//! - **Environment**: only an allow-list of the daemon's variables is passed
//!   on ([`PASSED_ON`]: `PATH`, `LANG`, `LC_*`, `TZ`, `HOME`); everything else
//!   — the variable named by `password_env`, `NOTIFY_SOCKET`, whatever the
//!   service manager or the shell left — is dropped. Callers add their own
//!   (`CARP_*` for scripts). A `password_env` naming a passed-on variable is
//!   refused when the configuration is read (`config/password.rs`), so no
//!   secret can slip through.
//! - **Scheduling**: the daemon may run SCHED_FIFO/SCHED_RR
//!   ([`crate::realtime`], or systemd's `CPUSchedulingPolicy=`); the child is
//!   put back to SCHED_OTHER between fork and exec, so a script or a check in
//!   a busy loop cannot starve the machine, nor the daemon.
//! - **Process group**: the child leads its own group, so a timeout can kill
//!   everything it started.

use std::ffi::OsStr;
use std::io;

/// Variables passed on to children, by exact name; `LC_*` also passes.
pub const PASSED_ON: [&str; 4] = ["PATH", "LANG", "TZ", "HOME"];

/// Whether variable `name` of the daemon's environment is passed on.
pub fn passed_on(name: &str) -> bool {
    PASSED_ON.contains(&name) || name.starts_with("LC_")
}

/// A command for `program` with the allowed part of the daemon's
/// environment, its own process group and SCHED_OTHER after fork.
pub fn command(program: impl AsRef<OsStr>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear()
        .envs(std::env::vars_os().filter(|(name, _)| name.to_str().is_some_and(passed_on)))
        .process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only
    // makes the async-signal-safe system calls sched_getscheduler and
    // sched_setscheduler; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(reset_scheduling);
    }
    cmd
}

/// Kills the process group of `child`, which leads its own ([`command`]);
/// nothing once the child has been reaped (its id is gone).
pub fn kill_group(child: &tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|p| libc::pid_t::try_from(p).ok()) {
        // SAFETY: kill(2) on the group the child leads; no memory involved.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list() {
        for name in ["PATH", "LANG", "LC_ALL", "LC_TIME", "TZ", "HOME"] {
            assert!(passed_on(name), "{name}");
        }
        for name in [
            "CARPD_PASS",
            "NOTIFY_SOCKET",
            "LD_PRELOAD",
            "CARP_STATE",
            "RUST_LOG",
            "LANGUAGE_X",
            "path",
        ] {
            assert!(!passed_on(name), "{name}");
        }
    }

    #[tokio::test]
    async fn children_see_only_the_allowed_environment() {
        // cargo runs tests with CARGO_* variables set: something to leak.
        let ours: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
        assert!(ours.iter().any(|k| !passed_on(k)), "{ours:?}");
        let out = command("env").output().await.unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        for line in text.lines() {
            let name = line.split('=').next().unwrap();
            assert!(passed_on(name), "{name} leaked into the child: {text}");
        }
        for name in ours.iter().filter(|k| passed_on(k)) {
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
