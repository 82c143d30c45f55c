//! The optional Prometheus endpoint: `GET /metrics` over minimal HTTP/1.1
//! (one request per connection), answered from the same
//! [`StatusReport`] snapshot as `carpd-xdp status`.
//!
//! ```text
//! carpd_up 1
//! carpd_instance_state{interface="eth0",vhid="1",state="MASTER"} 1
//! carpd_adverts_sent_total{interface="eth0",vhid="1"} 3721
//! carpd_rejects_total{interface="eth0",vhid="1",reason="hmac"} 3
//! carpd_receive_total{reason="delivered"} 7442
//! ```
//!
//! When the main loop does not answer, only `carpd_up 0` is served.
//!
//! At most [`MAX_CONNECTIONS`] connections are served at a time, each for at
//! most [`IO_TIMEOUT`] per direction. While all of them are taken, nothing
//! is accepted: further clients wait in the kernel's listen backlog (and,
//! once that is full, their SYNs go unanswered and are retried by their
//! kernel), costing the daemon no file descriptor. A local user opening
//! thousands of connections therefore delays scrapes but cannot exhaust the
//! daemon's descriptors, which its health checks and scripts need.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::chain::Chain;
use crate::control::report::{StatusReport, STATES};
use crate::control::server::request_status;
use crate::control::ControlRequest;

/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a client has to send its request and read the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request head read, in bytes.
const MAX_HEAD_BYTES: usize = 8192;
/// Content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Errors of the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listening socket could not be set up.
    #[error("{op} {addr}")]
    Io {
        /// What we were doing (`bind`, `register`).
        op: &'static str,
        /// The listen address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// The listening endpoint. Dropping it stops serving.
#[derive(Debug)]
pub struct MetricsServer {
    /// The address actually bound (the port is known even when 0 was asked).
    local_addr: SocketAddr,
    /// The accept loop.
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Listens on `addr` and serves `/metrics`, asking the main loop over
    /// `requests`. Must be called from within a tokio runtime.
    pub fn bind(
        addr: SocketAddr,
        requests: mpsc::Sender<ControlRequest>,
    ) -> Result<MetricsServer, MetricsError> {
        let io_err = |op| move |source| MetricsError::Io { op, addr, source };
        let std_listener = std::net::TcpListener::bind(addr).map_err(io_err("bind"))?;
        std_listener
            .set_nonblocking(true)
            .map_err(io_err("set non-blocking"))?;
        let local_addr = std_listener
            .local_addr()
            .map_err(io_err("read address of"))?;
        let listener = TcpListener::from_std(std_listener).map_err(io_err("register"))?;
        let task = tokio::spawn(crate::control::accept::serve_connections(
            listener,
            MAX_CONNECTIONS,
            "metrics",
            move |stream| serve(stream, requests.clone()),
        ));
        Ok(MetricsServer { local_addr, task })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head and answers it; the connection then closes.
async fn serve(mut stream: TcpStream, requests: mpsc::Sender<ControlRequest>) {
    let head = match tokio::time::timeout(IO_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => {
            debug!(error = %Chain(&e), "metrics request unreadable");
            return;
        }
        Err(_) => {
            debug!("metrics client sent no request in time");
            return;
        }
    };
    let response = respond(&head, &requests).await;
    match tokio::time::timeout(IO_TIMEOUT, async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    })
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!(error = %Chain(&e), "metrics answer not sent"),
        Err(_) => debug!("metrics client did not read the answer in time"),
    }
}

/// Reads up to the blank line ending the request head.
async fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_HEAD_BYTES {
            break;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The whole HTTP response to a request head.
async fn respond(head: &str, requests: &mpsc::Sender<ControlRequest>) -> Vec<u8> {
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = match (words.next(), words.next(), words.next()) {
        (Some(method), Some(target), Some(version)) if version.starts_with("HTTP/1.") => {
            (method, target)
        }
        _ => return response("400 Bad Request", "text/plain", "bad request\n", true),
    };
    let path = target.split('?').next().unwrap_or(target);
    if path != "/metrics" {
        return response(
            "404 Not Found",
            "text/plain",
            "not found\n",
            method != "HEAD",
        );
    }
    if method != "GET" && method != "HEAD" {
        return response(
            "405 Method Not Allowed",
            "text/plain",
            "only GET and HEAD\n",
            true,
        );
    }
    let body = match request_status(requests).await {
        Ok(report) => render(&report),
        Err(e) => {
            warn!(error = %e, "metrics: no status from the main loop");
            render_down()
        }
    };
    response("200 OK", CONTENT_TYPE, &body, method == "GET")
}

/// Status line, headers and (unless HEAD) body.
fn response(status: &str, content_type: &str, body: &str, with_body: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if with_body {
        out.push_str(body);
    }
    out.into_bytes()
}

/// The exposition when the main loop did not answer.
fn render_down() -> String {
    "# HELP carpd_up Whether the daemon's main loop answered.\n# TYPE carpd_up gauge\ncarpd_up 0\n"
        .to_owned()
}

/// The report in the Prometheus text exposition format.
pub fn render(report: &StatusReport) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {value}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        }
    };
    family(
        "carpd_up",
        "gauge",
        "Whether the daemon's main loop answered.",
        &[(String::new(), "1".into())],
    );
    family(
        "carpd_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
        &[(String::new(), report.uptime_secs.to_string())],
    );
    let instances = &report.instances;
    let per_instance = |value: &dyn Fn(&crate::control::InstanceReport) -> String| {
        instances
            .iter()
            .map(|i| (instance_labels(i), value(i)))
            .collect::<Vec<_>>()
    };
    let states: Vec<(String, String)> = instances
        .iter()
        .flat_map(|i| {
            STATES.iter().map(move |state| {
                (
                    format!("{},state=\"{state}\"", instance_labels(i)),
                    u8::from(i.state == *state).to_string(),
                )
            })
        })
        .collect();
    family(
        "carpd_instance_state",
        "gauge",
        "1 for the current state of the instance.",
        &states,
    );
    family(
        "carpd_instance_demote",
        "gauge",
        "Current demotion of the instance.",
        &per_instance(&|i| i.demote.to_string()),
    );
    family(
        "carpd_adverts_sent_total",
        "counter",
        "Adverts sent.",
        &per_instance(&|i| i.adverts_sent.to_string()),
    );
    family(
        "carpd_adverts_accepted_total",
        "counter",
        "Adverts received and accepted.",
        &per_instance(&|i| i.adverts_accepted.to_string()),
    );
    family(
        "carpd_adverts_repeated_total",
        "counter",
        "Accepted adverts repeating a counter (UCARP or BSD peers made to repeat theirs), taken as proof of life only.",
        &per_instance(&|i| i.adverts_repeated.to_string()),
    );
    family(
        "carpd_transitions_total",
        "counter",
        "State changes.",
        &per_instance(&|i| i.transitions.to_string()),
    );
    family(
        "carpd_health_unknown_total",
        "counter",
        "Health-check runs that could not be started (no resources): neither pass nor fail.",
        &per_instance(&|i| i.health_unknown.to_string()),
    );
    let rejects: Vec<(String, String)> = instances
        .iter()
        .flat_map(|i| {
            i.rejects.iter().map(move |(reason, total)| {
                (
                    format!("{},reason=\"{}\"", instance_labels(i), escape(reason)),
                    total.to_string(),
                )
            })
        })
        .collect();
    family(
        "carpd_rejects_total",
        "counter",
        "Adverts rejected by the protocol, by reason.",
        &rejects,
    );
    let receive: Vec<(String, String)> = report
        .counters
        .iter()
        .map(|(reason, total)| (format!("reason=\"{}\"", escape(reason)), total.to_string()))
        .collect();
    family(
        "carpd_receive_total",
        "counter",
        "Packets seen by the receive path, by outcome.",
        &receive,
    );
    out
}

/// `interface="eth0",vhid="1"`.
fn instance_labels(i: &crate::control::InstanceReport) -> String {
    format!("interface=\"{}\",vhid=\"{}\"", escape(&i.interface), i.vhid)
}

/// A label value escaped as the text format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::InstanceReport;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn every_state_is_exported_with_one_set() {
        let report = StatusReport {
            instances: vec![InstanceReport {
                interface: "eth0".into(),
                vhid: 7,
                state: "BACKUP".into(),
                ..InstanceReport::default()
            }],
            ..StatusReport::default()
        };
        let text = render(&report);
        for (state, value) in [("INIT", 0), ("BACKUP", 1), ("MASTER", 0)] {
            let line = format!(
                "carpd_instance_state{{interface=\"eth0\",vhid=\"7\",state=\"{state}\"}} {value}\n"
            );
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        assert!(text.contains("\ncarpd_up 1\n"));
    }
}
