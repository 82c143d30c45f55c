//! The optional Prometheus endpoint: `GET /metrics` over HTTP/1.1 (hyper,
//! one request per connection), answered from the same [`StatusReport`]
//! snapshot as `carpd-xdp status`, in the Prometheus text format 0.0.4
//! (prometheus-client, from a collector over the snapshot).
//!
//! ```text
//! carpd_up 1
//! carpd_instance_state{interface="eth0",vhid="1",state="MASTER"} 1
//! carpd_adverts_sent_total{interface="eth0",vhid="1"} 3721
//! carpd_adverts_sent_by_standin_total{interface="eth0",vhid="1"} 2
//! carpd_rejects_total{interface="eth0",vhid="1",reason="hmac"} 3
//! carpd_sync_group_state{group="gw",state="MASTER"} 1
//! carpd_receive_total{reason="delivered"} 7442
//! carpd_conntrackd_steps_total{step="commit",outcome="ok"} 2
//! ```
//!
//! The conntrackd steps (crate::conntrackd) are shown once a sync group
//! drives conntrackd, every step and outcome, zeros included.
//!
//! When the main loop does not answer, only `carpd_up 0` is served.
//!
//! At most [`MAX_CONNECTIONS`] connections are served at a time. A client
//! has [`HEADER_READ_TIMEOUT`] to send a request head of at most
//! [`MAX_HEAD_BYTES`], and the whole connection is closed after
//! [`CONNECTION_TIMEOUT`] whatever it is doing. While all slots are taken,
//! nothing is accepted: further clients wait in the kernel's listen backlog
//! (and, once that is full, their SYNs go unanswered and are retried by
//! their kernel), costing the daemon no file descriptor. A local user
//! opening thousands of connections therefore delays scrapes but cannot
//! exhaust the daemon's descriptors, which its health checks and scripts
//! need.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    prometheus_text, DescriptorEncoder, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::TypedMetric;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::chain::Chain;
use crate::control::report::{InstanceReport, StatusReport, STATES};
use crate::control::server::request_status;
use crate::control::ControlRequest;

/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a client has to send its request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection is served at most, request and answer together.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest request head (request line and headers), in bytes; also hyper's
/// smallest read buffer.
pub const MAX_HEAD_BYTES: usize = 8192;

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

/// Serves one connection (one request: keep-alive is off), dropping it
/// after [`CONNECTION_TIMEOUT`] however far it got.
async fn serve(stream: TcpStream, requests: mpsc::Sender<ControlRequest>) {
    let service = service_fn(move |request| respond(request, requests.clone()));
    let connection = http().serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!(error = %Chain(&e), "metrics connection failed"),
        Err(_) => debug!("metrics connection closed after {CONNECTION_TIMEOUT:?}"),
    }
}

/// HTTP/1.1 with the endpoint's limits: the request head within
/// [`HEADER_READ_TIMEOUT`] (else the connection closes) and at most
/// [`MAX_HEAD_BYTES`] (else 431), the read buffer no larger, and keep-alive
/// off, so every response closes its connection. Header names go out in
/// title case (`Content-Type`), as they always have.
fn http() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(false)
        .title_case_headers(true);
    builder
}

/// The answer to one request: the metrics for GET and HEAD `/metrics`
/// (hyper leaves the body out for HEAD), 404 or 405 otherwise.
async fn respond(
    request: Request<Incoming>,
    requests: mpsc::Sender<ControlRequest>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/metrics" {
        return Ok(response(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".into(),
        ));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut refused = response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET and HEAD\n".into(),
        );
        refused
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(refused);
    }
    let report = match request_status(&requests).await {
        Ok(report) => Some(report),
        Err(e) => {
            warn!(error = %e, "metrics: no status from the main loop");
            None
        }
    };
    Ok(match render(report) {
        Ok(text) => response(StatusCode::OK, prometheus_text::CONTENT_TYPE, text),
        Err(e) => {
            warn!(error = %e, "metrics: cannot encode the status");
            response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                "metrics not encoded\n".into(),
            )
        }
    })
}

/// A response with a body (Content-Length is hyper's).
fn response(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A counter every instance has: its name (without `_total`), its help and
/// where its value is.
type InstanceCounter = (&'static str, &'static str, fn(&InstanceReport) -> u64);

/// The per-instance counters, in the order they are exposed.
const INSTANCE_COUNTERS: [InstanceCounter; 6] = [
    ("carpd_adverts_sent", "Adverts sent.", |i| i.adverts_sent),
    (
        "carpd_adverts_sent_by_standin",
        "Of the adverts sent, those a stand-in sender sent because the daemon's loop was late.",
        |i| i.adverts_sent_by_standin,
    ),
    (
        "carpd_adverts_accepted",
        "Adverts received and accepted.",
        |i| i.adverts_accepted,
    ),
    (
        "carpd_adverts_repeated",
        "Accepted adverts repeating a counter (UCARP or BSD peers made to repeat theirs), taken as proof of life only.",
        |i| i.adverts_repeated,
    ),
    ("carpd_transitions", "State changes.", |i| i.transitions),
    (
        "carpd_health_unknown",
        "Health-check runs that could not be started (no resources): neither pass nor fail.",
        |i| i.health_unknown,
    ),
];

/// The exposition of one scrape in the Prometheus text format: the report,
/// or only `carpd_up 0` when the main loop did not answer (`None`).
fn render(report: Option<StatusReport>) -> Result<String, std::fmt::Error> {
    render_with(report, crate::conntrackd::step_totals())
}

/// [`render`] with the conntrackd step totals given (`None`: no driver).
fn render_with(
    report: Option<StatusReport>,
    conntrackd: Option<StepTotals>,
) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape { report, conntrackd }));
    let mut text = String::new();
    prometheus_text::encode(&mut text, &registry)?;
    Ok(text)
}

/// (step, outcome, count) of the conntrackd driver.
type StepTotals = Vec<(&'static str, &'static str, u64)>;

/// The collector of one scrape: every family, in a fixed order, from one
/// snapshot.
#[derive(Debug)]
struct Scrape {
    /// The main loop's report (`None`: it did not answer).
    report: Option<StatusReport>,
    /// The conntrackd steps (`None`: conntrackd is not driven).
    conntrackd: Option<StepTotals>,
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        single(
            e,
            "carpd_up",
            "Whether the daemon's main loop answered.",
            ConstGauge::new(u32::from(self.report.is_some())),
        )?;
        let Some(report) = &self.report else {
            return Ok(());
        };
        // Gauges are signed in the format; an uptime past i64::MAX seconds
        // cannot happen; saturating keeps this gauge encodable.
        single(
            e,
            "carpd_uptime_seconds",
            "Seconds since the daemon started.",
            ConstGauge::new(i64::try_from(report.uptime_secs).unwrap_or(i64::MAX)),
        )?;
        let instances = &report.instances;
        family(
            e,
            "carpd_instance_state",
            "1 for the current state of the instance.",
            instances.iter().flat_map(|i| {
                STATES.iter().map(move |state| {
                    let labels = (instance_labels(i), [("state", *state)]);
                    (labels, ConstGauge::new(u32::from(i.state == *state)))
                })
            }),
        )?;
        family(
            e,
            "carpd_instance_demote",
            "Current demotion of the instance.",
            instances
                .iter()
                .map(|i| (instance_labels(i), ConstGauge::new(u32::from(i.demote)))),
        )?;
        // One group per name, as its first member reports it.
        let mut groups: Vec<(&str, &str)> = Vec::new();
        for i in instances {
            if let (Some(name), Some(state)) = (&i.sync_group, &i.group_state) {
                if !groups.iter().any(|(n, _)| n == name) {
                    groups.push((name, state));
                }
            }
        }
        family(
            e,
            "carpd_sync_group_state",
            "1 for the current state of the sync group.",
            groups.into_iter().flat_map(|(name, now)| {
                GROUP_STATES.iter().map(move |state| {
                    let labels = [("group", name), ("state", *state)];
                    (labels, ConstGauge::new(u32::from(now == *state)))
                })
            }),
        )?;
        for (name, help, value) in INSTANCE_COUNTERS {
            family(
                e,
                name,
                help,
                instances
                    .iter()
                    .map(|i| (instance_labels(i), ConstCounter::new(value(i)))),
            )?;
        }
        family(
            e,
            "carpd_rejects",
            "Adverts rejected by the protocol, by reason.",
            instances.iter().flat_map(|i| {
                i.rejects.iter().map(move |(reason, total)| {
                    let labels = (instance_labels(i), [("reason", reason.as_str())]);
                    (labels, ConstCounter::new(*total))
                })
            }),
        )?;
        family(
            e,
            "carpd_receive",
            "Packets seen by the receive path, by outcome.",
            report
                .counters
                .iter()
                .map(|(reason, total)| ([("reason", reason.as_str())], ConstCounter::new(*total))),
        )?;
        let Some(steps) = &self.conntrackd else {
            return Ok(());
        };
        family(
            e,
            "carpd_conntrackd_steps",
            "conntrackd calls at state changes, by step and outcome.",
            steps.iter().map(|(step, outcome, total)| {
                (
                    [("step", *step), ("outcome", *outcome)],
                    ConstCounter::new(*total),
                )
            }),
        )
    }
}

/// The states a sync group's `carpd_sync_group_state` takes.
const GROUP_STATES: [&str; 4] = ["MASTER", "BACKUP", "FAULT", "MIXED"];

/// A family of one sample without labels.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// One family: its `# HELP` and `# TYPE` lines, then a sample per label
/// set. Counters are named without `_total`, which the encoder appends.
fn family<S, M>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl Iterator<Item = (S, M)>,
) -> Result<(), std::fmt::Error>
where
    S: EncodeLabelSet,
    M: EncodeMetric + TypedMetric,
{
    let mut family = encoder.encode_descriptor(name, help, None, M::TYPE)?;
    for (labels, value) in samples {
        value.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// `interface="eth0",vhid="1"`.
fn instance_labels(i: &InstanceReport) -> impl EncodeLabelSet + '_ {
    ([("interface", i.interface.as_str())], [("vhid", i.vhid)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(interface: &str, vhid: u8, state: &str) -> InstanceReport {
        InstanceReport {
            interface: interface.into(),
            vhid,
            state: state.into(),
            ..InstanceReport::default()
        }
    }

    fn render_instances(instances: Vec<InstanceReport>) -> String {
        let report = StatusReport {
            instances,
            ..StatusReport::default()
        };
        render_with(Some(report), None).unwrap()
    }

    #[test]
    fn label_values_are_escaped() {
        let text = render_instances(vec![instance("a\"b\\c\nd", 1, "INIT")]);
        let line = "carpd_instance_demote{interface=\"a\\\"b\\\\c\\nd\",vhid=\"1\"} 0\n";
        assert!(text.contains(line), "{line} missing from\n{text}");
    }

    #[test]
    fn every_state_is_exported_with_one_set() {
        let text = render_instances(vec![instance("eth0", 7, "BACKUP")]);
        for (state, value) in [("INIT", 0), ("BACKUP", 1), ("MASTER", 0)] {
            let line = format!(
                "carpd_instance_state{{interface=\"eth0\",vhid=\"7\",state=\"{state}\"}} {value}\n"
            );
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        assert!(text.contains("\ncarpd_up 1\n"));
    }

    #[test]
    fn families_keep_their_names_and_types() {
        let text = render_instances(vec![instance("eth0", 7, "MASTER")]);
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        assert_eq!(
            types,
            [
                "# TYPE carpd_up gauge",
                "# TYPE carpd_uptime_seconds gauge",
                "# TYPE carpd_instance_state gauge",
                "# TYPE carpd_instance_demote gauge",
                "# TYPE carpd_sync_group_state gauge",
                "# TYPE carpd_adverts_sent_total counter",
                "# TYPE carpd_adverts_sent_by_standin_total counter",
                "# TYPE carpd_adverts_accepted_total counter",
                "# TYPE carpd_adverts_repeated_total counter",
                "# TYPE carpd_transitions_total counter",
                "# TYPE carpd_health_unknown_total counter",
                "# TYPE carpd_rejects_total counter",
                "# TYPE carpd_receive_total counter",
            ]
        );
        assert!(text.contains("\ncarpd_adverts_sent_total{interface=\"eth0\",vhid=\"7\"} 0\n"));
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[test]
    fn each_sync_group_is_exported_once_with_its_state() {
        let member = |vhid| InstanceReport {
            sync_group: Some("gw".into()),
            group_state: Some("FAULT".into()),
            ..instance("eth0", vhid, "BACKUP")
        };
        let text = render_instances(vec![member(1), member(2), instance("eth1", 3, "MASTER")]);
        for state in GROUP_STATES {
            let value = u8::from(state == "FAULT");
            let line =
                format!("\ncarpd_sync_group_state{{group=\"gw\",state=\"{state}\"}} {value}\n");
            assert_eq!(text.matches(&line).count(), 1, "{line}{text}");
        }
    }

    #[test]
    fn conntrackd_steps_are_rendered_once_driven() {
        let steps = vec![("commit", "ok", 2), ("commit", "timed_out", 0)];
        let text = render_with(Some(StatusReport::default()), Some(steps)).unwrap();
        assert!(
            text.contains("# TYPE carpd_conntrackd_steps_total counter\n"),
            "{text}"
        );
        for line in [
            "carpd_conntrackd_steps_total{step=\"commit\",outcome=\"ok\"} 2\n",
            "carpd_conntrackd_steps_total{step=\"commit\",outcome=\"timed_out\"} 0\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn without_a_report_only_carpd_up_0_is_rendered() {
        assert_eq!(
            render_with(None, Some(vec![("commit", "ok", 1)])).unwrap(),
            "# HELP carpd_up Whether the daemon's main loop answered.\n\
             # TYPE carpd_up gauge\n\
             carpd_up 0\n"
        );
    }
}
