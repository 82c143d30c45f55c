//! `net::link` against a real kernel: name/alias resolution, MAC and
//! addresses, and carrier events when the veth peer goes down and up.

mod common;

use std::time::Duration;

use carp_daemon::net::link::{self, LinkError, LinkEvent, Links};
use common::{block_on, require_root, veth_pair};
use tokio::sync::mpsc;

/// Next event, with a bound that only keeps a broken build from hanging.
async fn next(rx: &mut mpsc::Receiver<LinkEvent>) -> LinkEvent {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("no link event within 30 s")
        .expect("watch ended")
}

#[test]
fn resolve_names_macs_and_addresses() {
    if !require_root("resolve_names_macs_and_addresses") {
        return;
    }
    // The peer namespace only holds vb, the other end of va.
    let (a, _b) = veth_pair("clnk", "va", "clnk", "vb");
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "va"]);
    a.ip(&["addr", "add", "192.0.2.2/24", "dev", "va"]);
    let (ifindex, mac) = (a.ifindex("va"), a.mac("va"));
    a.run(|| {
        block_on(async {
            let links = Links::new().expect("netlink");
            let info = links.by_name("va").await.expect("va");
            assert_eq!(
                (info.ifindex, info.name.as_str(), info.mac),
                (ifindex, "va", Some(mac))
            );
            let alias = links.by_name("va:carp0").await.expect("alias");
            assert_eq!(alias.ifindex, ifindex);
            assert_eq!(links.by_index(ifindex).await.expect("by index").name, "va");
            let err = links.by_name("nosuch0").await.expect_err("absent");
            assert!(
                matches!(err, LinkError::NoSuchName { ref name } if name == "nosuch0"),
                "{err:?}"
            );
            assert!(matches!(
                links.by_index(ifindex + 1000).await,
                Err(LinkError::NoSuchIndex { .. })
            ));
            assert_eq!(
                links.first_ipv4(ifindex).await.expect("v4"),
                Some("192.0.2.1".parse().unwrap())
            );
            // The kernel configures the link-local address once the link has
            // carrier; wait for it (bounded).
            let mut ll = None;
            for _ in 0..300 {
                ll = links.link_local_ipv6(ifindex).await.expect("v6");
                if ll.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let ll = ll.expect("link-local address");
            assert_eq!(ll.segments()[0], 0xfe80, "{ll}");
        })
    });
}

/// The (index, carrier) an event reports.
fn seen(ev: &LinkEvent) -> (Option<u32>, bool) {
    (ev.ifindex(), ev.carrier())
}

#[test]
fn carrier_events_follow_the_peer() {
    if !require_root("carrier_events_follow_the_peer") {
        return;
    }
    let (a, b) = veth_pair("clnk", "va", "clnk", "vb");
    // A second pair inside `a`: d0 stays down until the test raises it.
    a.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    a.ip(&["link", "set", "d1", "up"]);
    let (va, d0) = (a.ifindex("va"), a.ifindex("d0"));
    a.run(|| {
        block_on(async {
            let names = ["va".to_string(), "d0".to_string()];
            let mut rx = link::watch(&names).await.expect("watch");
            // The initial state of each interface comes first, in order.
            let first = next(&mut rx).await;
            assert_eq!((first.name.as_str(), first.ifindex()), ("va", Some(va)));
            let second = next(&mut rx).await;
            assert_eq!(second.name, "d0");
            assert_eq!(seen(&second), (Some(d0), false), "d0 is down");
            // va may still be coming up (link watch delay): wait for carrier.
            let mut carrier = first.carrier();
            while !carrier {
                let ev = next(&mut rx).await;
                assert_eq!(ev.ifindex(), Some(va));
                carrier = ev.carrier();
            }
            // Events run in the namespace; commands change it from outside.
            b.ip(&["link", "set", "vb", "down"]);
            assert_eq!(seen(&next(&mut rx).await), (Some(va), false));
            b.ip(&["link", "set", "vb", "up"]);
            assert_eq!(seen(&next(&mut rx).await), (Some(va), true));
            // Raising d0 gives it carrier.
            a.ip(&["link", "set", "d0", "up"]);
            assert_eq!(seen(&next(&mut rx).await), (Some(d0), true));
            // Deleting it (the kernel reports it down first, then gone)
            // leaves the name without an interface.
            a.ip(&["link", "del", "d0"]);
            let mut gone = next(&mut rx).await;
            if gone.ifindex().is_some() {
                assert_eq!(seen(&gone), (Some(d0), false));
                gone = next(&mut rx).await;
            }
            assert_eq!((gone.name.as_str(), seen(&gone)), ("d0", (None, false)));
            // Created again under the same name: a new index, followed.
            a.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
            let d0_again = a.ifindex("d0");
            assert_ne!(d0_again, d0);
            let back = next(&mut rx).await;
            assert_eq!(
                (back.name.as_str(), seen(&back)),
                ("d0", (Some(d0_again), false))
            );
            a.ip(&["link", "set", "d1", "up"]);
            a.ip(&["link", "set", "d0", "up"]);
            let mut ev = next(&mut rx).await;
            while !ev.carrier() {
                ev = next(&mut rx).await;
            }
            assert_eq!(seen(&ev), (Some(d0_again), true));
            // Renamed (it must be down for that): gone under its old name.
            a.ip(&["link", "set", "d0", "down"]);
            assert_eq!(seen(&next(&mut rx).await), (Some(d0_again), false));
            a.ip(&["link", "set", "d0", "name", "d9"]);
            let renamed = next(&mut rx).await;
            assert_eq!(
                (renamed.name.as_str(), seen(&renamed)),
                ("d0", (None, false))
            );
        })
    });
}
