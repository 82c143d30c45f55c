//! The control socket end to end: a server on a temp socket, a fake main
//! loop answering status requests, the blocking client; stale and live
//! sockets; the table people read.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use carp_daemon::control::{
    query, render_table, ControlError, ControlRequest, ControlServer, InstanceReport,
    InterfaceReport, StatusReport,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn sample() -> StatusReport {
    let mut counters: BTreeMap<String, u64> = ["delivered", "hmac", "ttl", "replay"]
        .iter()
        .map(|n| ((*n).to_owned(), 0))
        .collect();
    counters.insert("delivered".into(), 7442);
    counters.insert("hmac".into(), 3);
    StatusReport {
        version: "0.1.0".into(),
        pid: 4242,
        uptime_secs: 3723,
        interfaces: vec![
            InterfaceReport {
                name: "eth0".into(),
                ifindex: 2,
                mode: "native".into(),
                fallback_reason: None,
            },
            InterfaceReport {
                name: "eth1".into(),
                ifindex: 3,
                mode: "skb".into(),
                fallback_reason: Some("driver lacks native XDP".into()),
            },
        ],
        counters,
        instances: vec![
            InstanceReport {
                interface: "eth0".into(),
                ifindex: Some(2),
                label: None,
                vhid: 1,
                state: "MASTER".into(),
                master: Some("192.0.2.1".into()),
                master_kind: None,
                last_advert_age_ms: None,
                advbase_secs: 1,
                advskew: 0,
                demote: 0,
                preempt: true,
                held: false,
                vips: vec!["192.0.2.10/24".into()],
                adverts_sent: 3721,
                adverts_sent_by_standin: 0,
                adverts_accepted: 0,
                adverts_repeated: 0,
                transitions: 2,
                last_change_reason: Some("master down".into()),
                last_change_age_ms: Some(65_000),
                demote_health: 0,
                demote_vips: 0,
                rejects: BTreeMap::from([("hmac".into(), 3), ("replay".into(), 0)]),
                health_unknown: 0,
                sync_group: None,
                group_state: None,
                group_reason: None,
                virtual_mac: Some("00:00:5e:00:01:01".into()),
                virtual_mac_link: Some("vmac1.2".into()),
            },
            InstanceReport {
                interface: "eth1".into(),
                ifindex: Some(3),
                label: Some("eth1:carp0".into()),
                vhid: 20,
                state: "BACKUP".into(),
                master: Some("2001:db8::2".into()),
                master_kind: Some("ucarp".into()),
                last_advert_age_ms: Some(840),
                advbase_secs: 2,
                advskew: 100,
                demote: 10,
                preempt: false,
                held: true,
                vips: vec!["2001:db8::20/64".into(), "198.51.100.20/32".into()],
                adverts_sent: 0,
                adverts_sent_by_standin: 0,
                adverts_accepted: 1860,
                adverts_repeated: 0,
                transitions: 1,
                last_change_reason: Some("preferred master heard".into()),
                last_change_age_ms: Some(4_200),
                demote_health: 10,
                demote_vips: 0,
                rejects: BTreeMap::new(),
                health_unknown: 4,
                sync_group: Some("gw".into()),
                group_state: Some("FAULT".into()),
                group_reason: Some("eth2 vhid 21: link down".into()),
                virtual_mac: None,
                virtual_mac_link: None,
            },
        ],
    }
}

/// A main loop that answers every status request with `report`.
fn fake_main_loop(report: StatusReport) -> mpsc::Sender<ControlRequest> {
    let (tx, mut rx) = mpsc::channel(4);
    tokio::spawn(async move {
        while let Some(ControlRequest::Status { reply }) = rx.recv().await {
            let _ = reply.send(report.clone());
        }
    });
    tx
}

fn socket_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("carpd.sock")
}

/// Sends a raw line, returns the raw answer line.
async fn raw(path: &Path, line: &str) -> String {
    let mut stream = tokio::net::UnixStream::connect(path).await.unwrap();
    stream.write_all(line.as_bytes()).await.unwrap();
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).await.unwrap();
    answer
}

#[test]
fn status_round_trip_through_the_socket() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let _guard = rt.enter();
    let server = ControlServer::bind(&path, fake_main_loop(sample())).unwrap();
    assert_eq!(server.path(), path);

    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // The blocking client, as `carpd-xdp status` uses it.
    let client_path = path.clone();
    let report = rt
        .block_on(tokio::task::spawn_blocking(move || query(&client_path)))
        .unwrap()
        .unwrap();
    assert_eq!(report, sample());

    // Unknown commands get an error object.
    let answer = rt.block_on(raw(&path, "reload\n"));
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("\"reload\""),
        "{answer}"
    );

    drop(server);
    assert!(!path.exists(), "socket file removed on drop");
    let err = query(&path).unwrap_err();
    assert!(matches!(err, ControlError::NoDaemon { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("is carpd-xdp running? no socket at {}", path.display())
    );
}

#[test]
fn a_main_loop_that_drops_the_request_gives_an_error_answer() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let _guard = rt.enter();
    let (tx, mut rx) = mpsc::channel(1);
    rt.spawn(async move {
        while let Some(ControlRequest::Status { reply }) = rx.recv().await {
            drop(reply);
        }
    });
    let _server = ControlServer::bind(&path, tx).unwrap();
    let client_path = path.clone();
    let err = rt
        .block_on(tokio::task::spawn_blocking(move || query(&client_path)))
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, ControlError::Remote { ref message } if message.contains("dropped")),
        "{err}"
    );
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let _guard = rt.enter();

    // Left by a crashed run: the file exists, nobody listens.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let err = query(&path).unwrap_err();
    assert!(matches!(err, ControlError::NotAnswering { .. }), "{err}");
    let first = ControlServer::bind(&path, fake_main_loop(sample())).unwrap();
    let client_path = path.clone();
    rt.block_on(tokio::task::spawn_blocking(move || query(&client_path)))
        .unwrap()
        .unwrap();

    // A second daemon on the same path is refused; the first keeps working.
    let err = ControlServer::bind(&path, fake_main_loop(sample())).unwrap_err();
    assert!(matches!(err, ControlError::AlreadyRunning { .. }), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    let client_path = path.clone();
    let report = rt
        .block_on(tokio::task::spawn_blocking(move || query(&client_path)))
        .unwrap()
        .unwrap();
    assert_eq!(report.pid, 4242);
    drop(first);

    // Anything else in the way is left alone.
    std::fs::write(&path, b"not a socket").unwrap();
    let err = ControlServer::bind(&path, fake_main_loop(sample())).unwrap_err();
    assert!(matches!(err, ControlError::NotASocket { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
}

#[test]
fn the_table_shows_instances_receive_path_and_nonzero_counters() {
    let expected = "\
carpd-xdp 0.1.0 (pid 4242), up 1h02m03s

INTERFACE   VHID  STATE          SINCE                             MASTER               LAST ADVERT  ADVBASE/SKEW  DEMOTE          SENT  ACCEPTED  TRANSITIONS  VIPS
eth0        1     MASTER         1m05s ago: master down            192.0.2.1            -            1/0           0               3721  0         2            192.0.2.10/24
eth1:carp0  20    BACKUP (held)  4.2s ago: preferred master heard  2001:db8::2 (ucarp)  0.8s ago     2/100         10 (health 10)  0     1860      1            2001:db8::20/64,198.51.100.20/32
sync group gw: FAULT, eth2 vhid 21: link down (members eth1 vhid 20)
rejects eth0 vhid 1: hmac 3
virtual MAC eth0 vhid 1: 00:00:5e:00:01:01 on vmac1.2
health checks eth1 vhid 20: 4 runs could not be started (result unknown)

receive path:
  eth0 (ifindex 2): native
  eth1 (ifindex 3): skb (fallback: driver lacks native XDP)
receive counters: delivered 7442, hmac 3
";
    assert_eq!(render_table(&sample()), expected);

    // An instance whose interface is missing (deleted, not yet re-created).
    let mut missing = sample();
    missing.instances[0].ifindex = None;
    missing.instances[0].state = "INIT".into();
    missing.instances[0].master = None;
    let text = render_table(&missing);
    assert!(
        text.contains("\neth0        1     INIT (no interface)  1m05s ago: master down"),
        "{text}"
    );

    let empty = StatusReport {
        version: "0.1.0".into(),
        pid: 1,
        ..StatusReport::default()
    };
    assert_eq!(
        render_table(&empty),
        "carpd-xdp 0.1.0 (pid 1), up 0s\n\nno instances\n\nreceive path:\n  none\nreceive counters: all zero\n"
    );
}

#[test]
fn status_watch_redraws_until_interrupted() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let _guard = rt.enter();
    let _server = ControlServer::bind(&path, fake_main_loop(sample())).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_carpd-xdp"))
        .args(["status", "--watch", "1", "--socket"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    // The answers come from the runtime's fake main loop meanwhile.
    rt.block_on(tokio::time::sleep(std::time::Duration::from_millis(2_500)));
    child.kill().unwrap();
    child.wait().unwrap();
    let text = reader.join().unwrap();
    // Piped, not a terminal: rounds follow each other, each with its time
    // line and the whole table.
    let rounds = text.matches(" UTC  every 1.0 s  ").count();
    assert!(rounds >= 2, "{rounds} rounds in 2.5 s: {text:?}");
    assert_eq!(text.matches("eth1:carp0  20").count(), rounds, "{text:?}");
    // Out-of-range intervals are refused.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_carpd-xdp"))
        .args(["status", "--watch", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn at_most_max_connections_clients_are_served_at_once_and_the_rest_wait() {
    use carp_daemon::control::server::MAX_CONNECTIONS;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = socket_in(&dir);
    let _guard = rt.enter();
    // A main loop that never answers: each request stays outstanding until
    // the server gives up on it (REPLY_TIMEOUT). It records the most
    // requests outstanding at once and the total.
    let (tx, mut rx) = mpsc::channel(64);
    let main_loop = rt.spawn(async move {
        let (mut held, mut most, mut total) = (Vec::new(), 0, 0);
        while let Some(ControlRequest::Status { reply }) = rx.recv().await {
            held.retain(|r: &tokio::sync::oneshot::Sender<StatusReport>| !r.is_closed());
            held.push(reply);
            (most, total) = (most.max(held.len()), total + 1);
        }
        (most, total)
    });
    let server = ControlServer::bind(&path, tx).unwrap();
    let clients: Vec<_> = (0..3 * MAX_CONNECTIONS)
        .map(|_| rt.spawn(raw_owned(path.clone())))
        .collect();
    // Every client is answered in the end (with the main loop's timeout
    // error): none is refused or dropped.
    for client in clients {
        let answer = rt.block_on(client).unwrap();
        assert!(answer.contains("did not answer"), "{answer}");
    }
    // Stopping the server ends the main loop.
    drop(server);
    let (most, total) = rt.block_on(main_loop).unwrap();
    assert_eq!(total, 3 * MAX_CONNECTIONS);
    assert_eq!(most, MAX_CONNECTIONS, "requests outstanding at once");
}

/// [`raw`] with an owned path, for spawning.
async fn raw_owned(path: PathBuf) -> String {
    raw(&path, "status\n").await
}

/// `carpd-xdp ARGS`: (exit code, stdout, stderr).
fn carpd(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_carpd-xdp"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `sample()` as the daemon of pid `pid` with only instance `index` of it.
fn one_instance(pid: u32, index: usize) -> StatusReport {
    let mut r = sample();
    r.pid = pid;
    r.instances = vec![r.instances[index].clone()];
    r.interfaces = vec![r.interfaces[index].clone()];
    r
}

#[test]
fn status_finds_the_shared_and_every_ucarp_style_socket() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().to_str().unwrap().to_owned();
    let _guard = rt.enter();

    // Nothing there: the error names both kinds of socket, as JSON too.
    std::fs::write(dir.path().join("carpd-xdp-notes.txt"), "x").unwrap();
    let (code, out, err) = carpd(&["status", "--run-dir", &run_dir]);
    assert_eq!(code, Some(1));
    assert!(out.is_empty(), "{out}");
    assert_eq!(
        err,
        format!(
            "carpd-xdp: is carpd-xdp running? no socket at {run_dir}/carpd-xdp.sock \
             nor {run_dir}/carpd-xdp-<interface>-<vhid>.sock\n"
        )
    );
    let (code, out, _) = carpd(&["status", "--json", "--run-dir", &run_dir]);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("no socket at"),
        "{out}"
    );

    // A UCARP-style process alone: found, shown as `--socket` shows it.
    let eth1 = dir.path().join("carpd-xdp-eth1-20.sock");
    let _b = ControlServer::bind(&eth1, fake_main_loop(one_instance(4243, 1))).unwrap();
    let (code, out, err) = carpd(&["status", "--run-dir", &run_dir]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, render_table(&one_instance(4243, 1)));
    let (_, out, _) = carpd(&["status", "--json", "--run-dir", &run_dir]);
    let report: StatusReport = serde_json::from_str(&out).unwrap();
    assert_eq!(report, one_instance(4243, 1));

    // The shared socket and a second UCARP-style one: every instance in
    // one table, each with its daemon's pid.
    let shared = dir.path().join("carpd-xdp.sock");
    let _a = ControlServer::bind(&shared, fake_main_loop(one_instance(4242, 0))).unwrap();
    let mut third = one_instance(4244, 0);
    third.instances[0].vhid = 3;
    third.instances[0].state = "BACKUP".into();
    let eth0 = dir.path().join("carpd-xdp-eth0-3.sock");
    let _c = ControlServer::bind(&eth0, fake_main_loop(third)).unwrap();
    let (code, out, err) = carpd(&["status", "--run-dir", &run_dir]);
    assert_eq!(code, Some(0), "{err}");
    let expected_head = format!(
        "carpd-xdp: 3 daemons\n\
         \x20 pid 4242  carpd-xdp 0.1.0  up 1h02m03s  {run_dir}/carpd-xdp.sock\n\
         \x20 pid 4244  carpd-xdp 0.1.0  up 1h02m03s  {run_dir}/carpd-xdp-eth0-3.sock\n\
         \x20 pid 4243  carpd-xdp 0.1.0  up 1h02m03s  {run_dir}/carpd-xdp-eth1-20.sock\n\n\
         PID   INTERFACE   VHID  STATE  "
    );
    assert!(out.starts_with(&expected_head), "{out}");
    let rows: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with("42"))
        .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        rows,
        [
            "4242 eth0 1 MASTER",
            "4244 eth0 3 BACKUP",
            "4243 eth1:carp0 20 BACKUP"
        ],
        "{out}"
    );
    assert!(
        out.contains("  pid 4243: eth1 (ifindex 3): skb (fallback: driver lacks native XDP)\n"),
        "{out}"
    );
    let (_, out, _) = carpd(&["status", "--json", "--run-dir", &run_dir]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let pids: Vec<u64> = v["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"]["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids, [4242, 4244, 4243], "{out}");
    assert_eq!(v["errors"], serde_json::json!([]), "{out}");

    // A crashed UCARP-style process left its socket: the others are shown,
    // the stale one is named, and the exit status says not all answered.
    let stale = dir.path().join("carpd-xdp-eth2-9.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let (code, out, _) = carpd(&["status", "--run-dir", &run_dir]);
    assert_eq!(code, Some(1));
    assert!(out.starts_with("carpd-xdp: 3 daemons\n"), "{out}");
    assert!(
        out.ends_with(&format!(
            "\nnot answering:\n  {}: is carpd-xdp running? nothing answers at {} (stale socket)\n",
            stale.display(),
            stale.display()
        )),
        "{out}"
    );
    let (code, out, _) = carpd(&["status", "--json", "--run-dir", &run_dir]);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["daemons"].as_array().unwrap().len(), 3, "{out}");
    assert_eq!(v["errors"][0]["socket"], stale.to_str().unwrap(), "{out}");

    // --socket still means that one socket only.
    let (code, out, _) = carpd(&["status", "--socket", eth1.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert_eq!(out, render_table(&one_instance(4243, 1)));
    let (code, out, _) = carpd(&["status", "--json", "--socket", stale.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("stale socket"),
        "{out}"
    );
}
