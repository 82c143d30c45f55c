//! The metrics endpoint against the real Prometheus tools (Debian's
//! `prometheus` package): `promtool check metrics` accepts what a running
//! daemon serves, and a Prometheus server started in the host's namespace
//! scrapes it and answers queries for the `carpd_*` series.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{Daemon, Inst, Lan, Proc};
use common::require_root;
use serde_json::Value;

const VHID: u8 = 52;
const METRICS: &str = "127.0.0.1:9652";
const PROMETHEUS: &str = "127.0.0.1:9090";

/// One HTTP GET from inside the host's namespace; the body.
fn get(lan: &Lan, addr: &'static str, path: String) -> Option<String> {
    lan.hosts[0].ns.run(move || {
        let mut s = TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        s.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_string())
    })
}

/// The value of the first sample of an instant query, once there is one.
fn query(lan: &Lan, expr: &str) -> Option<String> {
    let encoded: String = expr
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let body = get(lan, PROMETHEUS, format!("/api/v1/query?query={encoded}"))?;
    // Chunked encoding may wrap the JSON; take the object itself.
    let json = &body[body.find('{')?..=body.rfind('}')?];
    let v: Value = serde_json::from_str(json).ok()?;
    v["data"]["result"][0]["value"][1]
        .as_str()
        .map(str::to_string)
}

#[test]
fn promtool_accepts_the_metrics_and_prometheus_scrapes_them() {
    if !require_root("promtool_accepts_the_metrics_and_prometheus_scrapes_them") {
        return;
    }
    for tool in ["promtool", "prometheus"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "{tool} is missing: install Debian's prometheus (cargo xtask setup does)"
        );
    }
    let lan = Lan::new("prom", 88, 52, 1);
    let inst = Inst::new(VHID, lan.addr(VHID), 0);
    let sock = lan.path("d.sock");
    let text = lan.config(0, &sock, std::slice::from_ref(&inst)).replacen(
        "[global]\n",
        &format!("[global]\nmetrics = \"{METRICS}\"\n"),
        1,
    );
    let config = lan.write("d.toml", &text, 0o644);
    let args = vec!["--config".to_string(), config.display().to_string()];
    let mut d = Daemon::start(&lan, 0, "d", &args, &[], sock);
    d.wait_state(VHID, "MASTER");

    // promtool's linter on what the endpoint serves.
    let body = get(&lan, METRICS, "/metrics".into()).expect("the metrics endpoint answers");
    assert!(body.contains("carpd_up 1"), "{body}");
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A real server, scraping every second.
    let prom_config = lan.write(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: carpd\n    \
             static_configs:\n      - targets: ['{METRICS}']\n"
        ),
        0o644,
    );
    let _prometheus = Proc::spawn(
        &lan,
        &lan.hosts[0].ns,
        "prometheus",
        "prometheus",
        &[
            format!("--config.file={}", prom_config.display()),
            format!("--storage.tsdb.path={}", lan.path("tsdb").display()),
            format!("--web.listen-address={PROMETHEUS}"),
        ],
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    let state = format!("carpd_instance_state{{vhid=\"{VHID}\",state=\"MASTER\"}}");
    let (up, master) = loop {
        let up = query(&lan, "carpd_up");
        let master = query(&lan, &state);
        if up.is_some() && master.is_some() {
            break (up, master);
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never returned the carpd series (carpd_up {up:?}, {state} {master:?}); see {}",
            lan.path("prometheus.stderr").display()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(up.as_deref(), Some("1"));
    assert_eq!(master.as_deref(), Some("1"));
    let sent = query(
        &lan,
        &format!("carpd_adverts_sent_total{{vhid=\"{VHID}\"}}"),
    );
    assert!(
        sent.as_deref()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|v| v >= 1.0),
        "adverts sent as scraped: {sent:?}"
    );
}
