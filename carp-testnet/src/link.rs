//! Links between namespaces: veth pairs, and a [`Bridge`], a "switch"
//! namespace whose `br0` joins hosts into one LAN, each host by a veth
//! whose other end is a bridge port.

use std::process::Command;

use crate::netns::Netns;
use crate::process::output;
use crate::Result;

/// Creates a veth pair, `a_if` in `a` and `b_if` in `b`, both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    veth_with(a, a_if, Port::default(), b, b_if)
}

/// [`veth`] with `a_if` as `how` says (its address is left to the caller).
fn veth_with(a: &Netns, a_if: &str, how: Port<'_>, b: &Netns, b_if: &str) -> Result<()> {
    let mut cmd = Command::new("ip");
    cmd.args(["link", "add", a_if]);
    if let Some(mac) = how.mac {
        cmd.args(["address", &mac_str(mac)]);
    }
    cmd.args(["netns", a.name(), "type", "veth", "peer", "name", b_if])
        .args(["netns", b.name()]);
    output(&mut cmd)?;
    if !how.down {
        a.ip(&["link", "set", a_if, "up"])?;
    }
    b.ip(&["link", "set", b_if, "up"])?;
    Ok(())
}

/// How a host joins a [`Bridge`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Port<'a> {
    /// MAC address of the host's interface (the kernel picks one if
    /// `None`).
    pub mac: Option<[u8; 6]>,
    /// `ADDRESS/PREFIX` added to the host's interface, if any.
    pub cidr: Option<&'a str>,
    /// Leave the host's interface down (to raise it later, after its
    /// address, as a re-created interface comes back).
    pub down: bool,
}

/// A namespace holding the bridge `br0`, up, a plain hub for multicast
/// (no IGMP snooping: that would need a querier; CARP's group is link-local
/// and flooded anyway). Dropping it deletes the namespace, and with it the
/// bridge and every port.
pub struct Bridge {
    /// The switch namespace.
    ns: Netns,
}

impl Bridge {
    /// Creates `br0` in `ns`.
    pub fn new(ns: Netns) -> Result<Bridge> {
        ns.ip(&["link", "add", "br0", "type", "bridge"])?;
        ns.ip(&[
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ns.ip(&["link", "set", "br0", "up"])?;
        Ok(Bridge { ns })
    }

    /// The switch namespace.
    pub fn ns(&self) -> &Netns {
        &self.ns
    }

    /// Joins `host` to the LAN: a veth from its `ifname` to bridge port
    /// `port`, both up, the port attached to `br0`, the host's side with
    /// the MAC, address and state of `how`.
    pub fn attach(&self, host: &Netns, ifname: &str, port: &str, how: Port<'_>) -> Result<()> {
        veth_with(host, ifname, how, &self.ns, port)?;
        self.ns.ip(&["link", "set", port, "master", "br0"])?;
        if let Some(cidr) = how.cidr {
            host.ip(&["addr", "add", cidr, "dev", ifname])?;
        }
        Ok(())
    }

    /// Sets bridge port `port` up or down: the cable of its host plugged in
    /// or pulled (the host's end loses carrier).
    pub fn set_port(&self, port: &str, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        self.ns.ip(&["link", "set", port, state])?;
        Ok(())
    }

    /// Isolates `port` (or stops isolating it): isolated ports exchange no
    /// frames with one another, only with the others, and keep carrier.
    pub fn set_isolated(&self, port: &str, on: bool) -> Result<()> {
        let on = if on { "on" } else { "off" };
        self.ns
            .ip(&["link", "set", port, "type", "bridge_slave", "isolated", on])?;
        Ok(())
    }
}

/// `aa:bb:cc:dd:ee:ff` form of a MAC address.
pub fn mac_str(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
