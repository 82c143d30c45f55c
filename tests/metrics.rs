//! The Prometheus endpoint over a real TCP connection on 127.0.0.1.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use carp_daemon::control::{ControlRequest, InstanceReport, StatusReport};
use carp_daemon::metrics::{MetricsServer, HEADER_READ_TIMEOUT, MAX_HEAD_BYTES};
use tokio::sync::mpsc;

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

/// A runtime with `workers` threads for the endpoint.
fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// One request, the whole response.
fn get(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn metrics_are_served_and_other_paths_are_not() {
    let rt = runtime(2);
    let _guard = rt.enter();
    let (tx, mut rx) = mpsc::channel(4);
    rt.spawn(async move {
        while let Some(ControlRequest::Status { reply }) = rx.recv().await {
            let _ = reply.send(report());
        }
    });
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap(), tx).unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let response = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    for line in [
        "carpd_up 1",
        "# TYPE carpd_adverts_sent_total counter",
        "carpd_instance_state{interface=\"eth0\",vhid=\"5\",state=\"MASTER\"} 1",
        "carpd_instance_state{interface=\"eth0\",vhid=\"5\",state=\"BACKUP\"} 0",
        "carpd_adverts_sent_total{interface=\"eth0\",vhid=\"5\"} 30",
        "carpd_adverts_accepted_total{interface=\"eth0\",vhid=\"5\"} 4",
        "carpd_transitions_total{interface=\"eth0\",vhid=\"5\"} 2",
        "carpd_rejects_total{interface=\"eth0\",vhid=\"5\",reason=\"advskew\"} 1",
        "carpd_receive_total{reason=\"delivered\"} 12",
        "carpd_receive_total{reason=\"hmac\"} 2",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "{line:?} missing from\n{body}"
        );
    }

    // An HTTP/1.0 request is answered in HTTP/1.0.
    let response = get(addr, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
    assert!(response.starts_with("HTTP/1.0 200 OK"), "{response}");
    let response = get(addr, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(
        response.starts_with("HTTP/1.1 200 OK") && response.ends_with("\r\n\r\n"),
        "{response}"
    );
    let response = get(addr, "GET / HTTP/1.1\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 404 Not Found"), "{response}");
    let response = get(addr, "POST /metrics HTTP/1.1\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 405"), "{response}");
    assert!(response.contains("\r\nAllow: GET, HEAD\r\n"), "{response}");
    let response = get(addr, "hello\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
}

#[test]
fn without_a_main_loop_only_carpd_up_0_is_served() {
    let rt = runtime(1);
    let _guard = rt.enter();
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap(), tx).unwrap();
    let response = get(server.local_addr(), "GET /metrics HTTP/1.1\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains("\ncarpd_up 0\n"), "{response}");
    assert!(!response.contains("carpd_instance_state"), "{response}");
}

/// Whatever arrives until the server closes, resets or goes quiet for
/// `wait`: a server that closes with part of a request unread resets the
/// connection, possibly before all of its answer is read.
fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> String {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 1024];
    while let Ok(n @ 1..) = stream.read(&mut chunk) {
        response.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn oversized_and_unfinished_request_heads_are_cut_off() {
    let rt = runtime(1);
    let _guard = rt.enter();
    let (tx, _rx) = mpsc::channel(1);
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap(), tx).unwrap();
    let addr = server.local_addr();

    let mut stream = TcpStream::connect(addr).unwrap();
    let long = "a".repeat(MAX_HEAD_BYTES);
    write!(stream, "GET /metrics HTTP/1.1\r\nX-Long: {long}\r\n\r\n").unwrap();
    let response = read_until_closed(&mut stream, Duration::from_secs(5));
    assert!(
        response.starts_with("HTTP/1.1 431 Request Header Fields Too Large"),
        "{response}"
    );

    // A head that never ends is dropped once its time is up.
    let mut stream = TcpStream::connect(addr).unwrap();
    let start = Instant::now();
    stream.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    let response = read_until_closed(&mut stream, HEADER_READ_TIMEOUT * 2);
    let waited = start.elapsed();
    assert!(
        waited >= HEADER_READ_TIMEOUT && waited < HEADER_READ_TIMEOUT * 2,
        "closed after {waited:?}: {response:?}"
    );
}
