//! `cargo xtask demo`: the receive path live, in a throw-away namespace pair.
//! UCARP runs as master in one namespace; `carpd-xdp monitor` attaches XDP in
//! the other and prints the adverts that pass validation, then the counters.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Namespaces and processes of the demo, removed on drop (every exit path
/// of this function, errors included).
struct Stage {
    namespaces: Vec<String>,
    children: Vec<Child>,
}

impl Drop for Stage {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) -> Result<()> {
    crate::setup::run_cmd(Command::new("ip").args(args))
}

pub fn run(daemon: &Path) -> Result<()> {
    if !crate::is_root() {
        bail!("the demo creates network namespaces and attaches XDP: run it as root");
    }
    let pid = std::process::id();
    let (a, b) = (format!("carpdemo-{pid}-a"), format!("carpdemo-{pid}-b"));
    let mut stage = Stage {
        namespaces: Vec::new(),
        children: Vec::new(),
    };
    for ns in [&a, &b] {
        ip(&["netns", "add", ns])?;
        stage.namespaces.push(ns.clone());
    }
    ip(&[
        "link", "add", "veth0", "netns", &a, "type", "veth", "peer", "name", "veth0", "netns", &b,
    ])?;
    ip(&["-n", &a, "addr", "add", "10.250.0.1/24", "dev", "veth0"])?;
    ip(&["-n", &b, "addr", "add", "10.250.0.2/24", "dev", "veth0"])?;
    ip(&["-n", &a, "link", "set", "veth0", "up"])?;
    ip(&["-n", &b, "link", "set", "veth0", "up"])?;

    println!("demo: host B ({b}) runs carpd-xdp monitor on veth0; host A ({a}) runs UCARP as master of vhid 7");
    let mut monitor = Command::new("ip")
        .args(["netns", "exec", &b])
        .arg(daemon)
        .args([
            "monitor",
            "--interface",
            "veth0",
            "--vhid",
            "7",
            "--xdp-mode",
            "auto",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .context("start carpd-xdp monitor")?;
    let mut monitor_stdin = monitor.stdin.take();
    stage.children.push(monitor);
    std::thread::sleep(Duration::from_millis(500));
    let ucarp = Command::new("ip")
        .args([
            "netns",
            "exec",
            &a,
            "ucarp",
            "--interface=veth0",
            "--srcip=10.250.0.1",
            "--vhid=7",
        ])
        .args([
            "--pass=demo",
            "--addr=10.250.0.100",
            "--advbase=1",
            "--advskew=0",
            "--preempt",
        ])
        .args(["--upscript=/bin/true", "--downscript=/bin/true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start ucarp (cargo xtask setup installs it)")?;
    stage.children.push(ucarp);
    std::thread::sleep(Duration::from_secs(6));
    if let Some(stdin) = monitor_stdin.as_mut() {
        writeln!(stdin, "counters")?;
        writeln!(stdin, "quit")?;
    }
    std::thread::sleep(Duration::from_millis(300));
    println!("demo: done; namespaces removed");
    Ok(())
}
