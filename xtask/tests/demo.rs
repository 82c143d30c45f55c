//! `cargo xtask demo`: both failovers run end to end (root: namespaces and
//! XDP), at UCARP's default timers and at the fastest ones; the sub-second
//! one shows an outage far below UCARP's default master-down time, and the
//! demo leaves no namespace behind.

use std::path::Path;
use std::process::Command;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

#[test]
fn demo_fails_over_at_default_and_at_the_fastest_timers() {
    if !carp_testnet::require_root("demo_fails_over_at_default_and_at_the_fastest_timers") {
        return;
    }
    let carpd = Path::new(XTASK).with_file_name("carpd-xdp");
    assert!(
        carpd.exists(),
        "{} missing: build the workspace first",
        carpd.display()
    );
    let child = Command::new(XTASK)
        .args(["demo", "--binary"])
        .arg(&carpd)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "carpd-xdp started on host a (advbase 1, advskew 0)",
        "carpd-xdp started on host b (advbase 1, advskew 100)",
        "host b's master-down interval: 3 × advbase + advskew/256 s = 3 × 1 + 100/256 s = 3390.6 ms",
        "carpd-xdp started on host a (advbase 0, advskew 0)",
        "carpd-xdp started on host b (advbase 0, advskew 1)",
        "host b's master-down interval: advbase 0: 3 × advskew/256 s = 3 × 1/256 s = 11.7 ms",
        "host a elected MASTER",
        "FAULT: host a's cable pulled",
        "host b took over",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    let outage = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(&format!("{name}: the client saw an outage of "))
            })
            .and_then(|rest| rest.split(" ms").next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no outage line for {name}:\n{text}"))
    };
    let (slow, fast) = (
        outage("UCARP's default timers"),
        outage("the fastest timers (sub-second failover)"),
    );
    // Host b's master-down interval (3391 ms) runs from host a's last
    // advert, sent up to one advert interval (1 s) before the fault, and
    // the client's last reply came up to one ping interval (10 ms) before
    // it: the outage lies between 2381 ms and the interval plus
    // announcement and scheduling. At the fastest timers the VIP moves in
    // well under a second (11.7 ms master-down, plus the same).
    assert!(
        (2381.0..4391.0).contains(&slow),
        "default outage {slow} ms:\n{text}"
    );
    assert!(fast < 1000.0, "sub-second outage {fast} ms:\n{text}");
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&namespaces.stdout).into_owned();
    assert!(
        !left.contains(&format!("carpdemo-{pid}-")),
        "namespaces left:\n{left}"
    );
}
