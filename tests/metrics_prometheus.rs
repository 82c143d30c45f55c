//! The metrics endpoint scraped by a real Prometheus server (Debian's
//! `prometheus` package): the target comes up healthy, and the series the
//! daemon exposes can be queried back with their labels and values. Whatever
//! Prometheus' parser refuses would leave the target down with its error.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use carp_daemon::control::{ControlRequest, InstanceReport, StatusReport};
use carp_daemon::metrics::MetricsServer;
use serde_json::Value;
use tokio::sync::mpsc;

/// Longest wait for Prometheus to start and scrape.
const PATIENCE: Duration = Duration::from_secs(90);

fn report() -> StatusReport {
    StatusReport {
        version: "0.1.0".into(),
        pid: 9,
        uptime_secs: 60,
        counters: BTreeMap::from([("delivered".into(), 12), ("hmac".into(), 2)]),
        instances: vec![InstanceReport {
            interface: "eth0".into(),
            vhid: 5,
            state: "MASTER".into(),
            adverts_sent: 30,
            adverts_accepted: 4,
            transitions: 2,
            rejects: BTreeMap::from([("advskew".into(), 1)]),
            ..InstanceReport::default()
        }],
        ..StatusReport::default()
    }
}

/// Kills and reaps Prometheus on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET `path` from Prometheus' HTTP API; the JSON body, or None while it is
/// not answering yet.
fn api(addr: SocketAddr, path: &str) -> Option<Value> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    // Go answers an HTTP/1.0 request with HTTP/1.0.
    let status = head.split(' ').nth(1)?;
    (status == "200").then(|| serde_json::from_str(body).ok())?
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of the one series a query returns, with its labels.
fn query(prometheus: SocketAddr, expr: &str) -> Option<(BTreeMap<String, String>, String)> {
    let encoded: String = expr
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let answer = api(prometheus, &format!("/api/v1/query?query={encoded}"))?;
    let result = answer["data"]["result"].as_array()?;
    let [series] = result.as_slice() else {
        return None;
    };
    let labels = series["metric"]
        .as_object()?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    Some((labels, series["value"][1].as_str()?.to_owned()))
}

#[test]
fn a_real_prometheus_scrapes_the_endpoint() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "prometheus is not installed (cargo xtask setup installs it) and CI=true forbids skipping"
        );
        eprintln!("skipped: prometheus is not installed (apt-get install prometheus)");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let (tx, mut rx) = mpsc::channel(4);
    rt.spawn(async move {
        while let Some(ControlRequest::Status { reply }) = rx.recv().await {
            let _ = reply.send(report());
        }
    });
    let metrics = MetricsServer::bind("127.0.0.1:0".parse().unwrap(), tx).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: carpd\n    static_configs:\n      - targets: ['{}']\n",
            metrics.local_addr()
        ),
    )
    .unwrap();
    let prometheus: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _server = Server(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prometheus}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );
    let log = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();

    // The target is scraped and healthy.
    let start = Instant::now();
    let target = loop {
        let up = api(prometheus, "/api/v1/targets").and_then(|t| {
            let target = t["data"]["activeTargets"].as_array()?.first()?.clone();
            (target["health"] == "up").then_some(target)
        });
        if let Some(target) = up {
            break target;
        }
        assert!(start.elapsed() < PATIENCE, "no healthy scrape:\n{}", log());
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(target["lastError"], "", "{target}");
    assert_eq!(target["labels"]["job"], "carpd");

    // The series come back as exposed; values are what the daemon reported.
    let instance = metrics.local_addr().to_string();
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        map.insert("job".into(), "carpd".into());
        map.insert("instance".into(), instance.clone());
        map
    };
    let eth0_5 = [("interface", "eth0"), ("vhid", "5")];
    let cases = [
        ("up", labels(&[]), "1"),
        ("carpd_up", labels(&[]), "1"),
        ("carpd_adverts_sent_total", labels(&eth0_5), "30"),
        ("carpd_adverts_accepted_total", labels(&eth0_5), "4"),
        ("carpd_transitions_total", labels(&eth0_5), "2"),
        (
            "carpd_instance_state{state=\"MASTER\"}",
            labels(&[eth0_5[0], eth0_5[1], ("state", "MASTER")]),
            "1",
        ),
        (
            "carpd_receive_total{reason=\"hmac\"}",
            labels(&[("reason", "hmac")]),
            "2",
        ),
        (
            "carpd_rejects_total{reason=\"advskew\"}",
            labels(&[eth0_5[0], eth0_5[1], ("reason", "advskew")]),
            "1",
        ),
    ];
    for (expr, expected_labels, expected_value) in cases {
        // The metric name is a label too; the expression already names it.
        let got = query(prometheus, expr).map(|(mut l, v)| {
            l.remove("__name__");
            (l, v)
        });
        assert_eq!(
            got,
            Some((expected_labels, expected_value.to_owned())),
            "{expr}\n{}",
            log()
        );
    }
}
