//! Network namespaces: created with loopback up, deleted on drop with
//! whatever still runs inside, and the ways into them: `ip -n`, commands
//! under `ip netns exec`, and threads that entered them with `setns(2)`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

use crate::process::output;
use crate::{Error, Result};

/// Numbers namespaces within this process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace, deleted on drop with the interfaces in it; the
/// processes still inside are killed first (they would keep it alive).
#[derive(Debug)]
pub struct Netns {
    /// Its name under `/run/netns`.
    name: String,
}

impl Netns {
    /// Creates a fresh namespace named `<prefix>-<pid>-<n>`, loopback up.
    pub fn new(prefix: &str) -> Result<Netns> {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        Netns::named(&format!("{prefix}-{}-{n}", std::process::id()))
    }

    /// Creates namespace `name`, loopback up; the caller makes the name
    /// unique (e.g. with its pid).
    pub fn named(name: &str) -> Result<Netns> {
        output(Command::new("ip").args(["netns", "add", name]))?;
        let ns = Netns {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <ns> ARGS`; its standard output.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let out = output(Command::new("ip").arg("-n").arg(&self.name).args(args))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`
    /// execs it in place: the child's pid is the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `program ARGS` inside the namespace to completion; its standard
    /// output.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        let out = output(self.command(program).args(args))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `f` on a thread that has entered the namespace (sockets it opens
    /// stay in the namespace) and waits for it; a panic in `f` goes on in
    /// the caller.
    pub fn run<R: Send, F: FnOnce() -> R + Send>(&self, f: F) -> Result<R> {
        std::thread::scope(|s| {
            let thread = s.spawn(|| {
                enter(&self.name)?;
                Ok(f())
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Index of interface `ifname` in the namespace.
    pub fn ifindex(&self, ifname: &str) -> Result<u32> {
        let out = self.ip(&["-o", "link", "show", "dev", ifname])?;
        out.split(':')
            .next()
            .and_then(|s| s.trim().parse().ok())
            .ok_or(Error::Parse {
                what: "ifindex",
                output: out,
            })
    }

    /// MAC address of interface `ifname` in the namespace.
    pub fn mac(&self, ifname: &str) -> Result<[u8; 6]> {
        let out = self.ip(&["-o", "link", "show", "dev", ifname])?;
        let mac = out
            .split("link/ether ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(parse_mac);
        mac.ok_or(Error::Parse {
            what: "link/ether",
            output: out,
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            let own = std::process::id();
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                match pid.parse::<u32>() {
                    // SAFETY: kill(2) has no memory preconditions.
                    Ok(pid) if pid != own => unsafe {
                        libc::kill(pid as i32, libc::SIGKILL);
                    },
                    _ => {}
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// `aa:bb:cc:dd:ee:ff` to bytes.
fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Enters network namespace `ns` on the calling thread (never call it on a
/// process's main thread: `ip netns pids` would count the process in).
pub fn enter(ns: &str) -> Result<()> {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).map_err(|io| Error::Os {
        op: format!("open {path}"),
        io,
    })?;
    // SAFETY: setns on this thread only, with a valid namespace fd.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(Error::last_os(format!("setns {path}")));
    }
    Ok(())
}

/// Runs `f` on a new thread inside namespace `ns`, for code that runs
/// alongside the caller (a prober, a reader).
pub fn spawn_in<T, F>(ns: &str, f: F) -> JoinHandle<Result<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter(&ns)?;
        Ok(f())
    })
}

#[cfg(test)]
mod tests {
    use super::parse_mac;

    #[test]
    fn macs_parse_whole_or_not_at_all() {
        assert_eq!(
            parse_mac("02:cb:00:00:0a:ff"),
            Some([0x02, 0xcb, 0, 0, 0x0a, 0xff])
        );
        assert_eq!(parse_mac("02:cb:00:00:0a"), None);
        assert_eq!(parse_mac("02:cb:00:00:0a:ff:01"), None);
        assert_eq!(parse_mac("02:cb:00:00:0a:zz"), None);
    }
}
