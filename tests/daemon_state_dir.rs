//! A `state_dir` whose writes block delays no advert and no leave (issue 19,
//! item 4).
//!
//! The counter reservation is written to `state_dir` when a host takes over
//! and about every 30 s after. Here `state_dir` is an ext4 image mounted in the
//! test's own mount namespace and frozen (`fsfreeze -f`), as a hung disk
//! would hold it: every write into it blocks until it is thawed. The host
//! takes over while it is frozen, must announce itself and keep advertising
//! at its interval (the other host, back as a backup without preempt, never
//! takes over) for 40 s, past the next reservation (asked for while the
//! first one is still blocked: warned about), and on SIGTERM must still send
//! its leave advert and remove its VIP at once.

mod common;

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{eventually, Daemon, Inst, Lan};
use common::{require_root, run_ok};

const VHID: u8 = 71;
/// How long the master runs with its state_dir frozen: past its second
/// reservation (30 s after the first).
const FROZEN: Duration = Duration::from_secs(40);

/// Enters a mount namespace of the calling thread's own, whose mounts do
/// not propagate to the host's: processes started from this thread see
/// what it mounts, nobody else does.
fn private_mount_namespace() {
    // SAFETY: unshare and mount take flags and valid C strings only; they
    // affect the calling thread (the test's) and its children.
    unsafe {
        assert_eq!(
            libc::unshare(libc::CLONE_NEWNS),
            0,
            "unshare(CLONE_NEWNS): {}",
            std::io::Error::last_os_error()
        );
        let root = CString::new("/").unwrap();
        let none = CString::new("none").unwrap();
        assert_eq!(
            libc::mount(
                none.as_ptr(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null()
            ),
            0,
            "making / private: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// A small ext4 filesystem mounted (loop device) at `dir`; unmounted on drop.
struct Mounted {
    dir: PathBuf,
}

impl Mounted {
    fn new(image: &Path, dir: &Path) -> Mounted {
        std::fs::create_dir_all(dir).unwrap();
        let f = std::fs::File::create(image).unwrap();
        f.set_len(16 << 20).unwrap();
        run_ok(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(image));
        run_ok(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(image)
                .arg(dir),
        );
        Mounted {
            dir: dir.to_path_buf(),
        }
    }

    /// Freezes it: every write blocks until the returned guard thaws it.
    fn freeze(&self) -> Frozen<'_> {
        run_ok(Command::new("fsfreeze").arg("-f").arg(&self.dir));
        Frozen(self)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// A frozen [`Mounted`]; thawed on drop.
struct Frozen<'a>(&'a Mounted);

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        let _ = Command::new("fsfreeze").arg("-u").arg(&self.0.dir).status();
    }
}

fn adverts_sent(d: &Daemon) -> Option<u64> {
    d.instance(VHID)?["adverts_sent"].as_u64()
}

#[test]
fn a_frozen_state_dir_delays_no_advert_and_no_leave() {
    if !require_root("a_frozen_state_dir_delays_no_advert_and_no_leave") {
        return;
    }
    private_mount_namespace();
    let lan = Lan::new("sdir", 219, 71, 2);
    let vip = lan.addr(VHID);
    let state = Mounted::new(&lan.path("state.img"), &lan.path("state-0"));
    let mut b = lan.daemon(1, "b", &[Inst::new(VHID, vip, 0).preempt(false)]);
    b.wait_state(VHID, "MASTER");
    let preferred_later = Inst::new(VHID, vip, 100);
    let interval = preferred_later.interval();
    let mut a = lan.daemon(0, "a", &[preferred_later]);
    a.wait_state(VHID, "BACKUP");
    // Host 0's state_dir freezes; then host 1 leaves and host 0 takes
    // over: its first advert needs a new reservation.
    let frozen = state.freeze();
    b.signal(libc::SIGTERM);
    a.wait_state(VHID, "MASTER");
    eventually("the VIP on host 0", || {
        (lan.holders(vip) == [0]).then_some(())
    });
    drop(b);
    let mut b = lan.daemon(1, "b2", &[Inst::new(VHID, vip, 0).preempt(false)]);
    b.wait_state(VHID, "BACKUP");

    // Frozen: host 0 advertises at its interval all along, and host 1
    // never takes over.
    let start = Instant::now();
    let sent_before = adverts_sent(&a).expect("host 0 answers while its state_dir is frozen");
    while start.elapsed() < FROZEN {
        assert_eq!(b.state(VHID).as_deref(), Some("BACKUP"), "host 1 took over");
        assert_eq!(lan.holders(vip), [0], "the VIP moved");
        std::thread::sleep(Duration::from_millis(200));
    }
    let sent =
        adverts_sent(&a).expect("host 0 answers while its state_dir is frozen") - sent_before;
    // Every interval but one (the two status reads are not in step with
    // the adverts).
    let expected = (FROZEN.as_secs_f64() / interval.as_secs_f64()) as u64 - 1;
    assert!(
        sent >= expected,
        "{sent} adverts in {FROZEN:?}, one every {interval:?}"
    );
    // The next reservation was asked for while the first was blocked.
    assert!(
        a.proc.stderr_text().contains("not written after"),
        "no warning about the blocked reservation"
    );

    // SIGTERM, still frozen: the leave advert hands over at once and the
    // VIP goes.
    let left = Instant::now();
    a.signal(libc::SIGTERM);
    eventually("host 0 removes its VIP", || {
        (!lan.holders(vip).contains(&0)).then_some(())
    });
    b.wait_state(VHID, "MASTER");
    let handover = left.elapsed();
    // Master-down of host 1 is 3 s: a handover well before it is the leave
    // advert's doing.
    assert!(
        handover < Duration::from_secs(2),
        "the leave took {handover:?} (master-down of host 1 is 3 s)"
    );
    drop(frozen);
}
