//! The loaded eBPF object set up as the daemon sets it up, for the tests
//! that push frames through it with `BPF_PROG_TEST_RUN`.

use std::net::IpAddr;

use carp_common::maps::VhidKey;
use carp_daemon::xdp::key::VhidKeys;
use carp_daemon::xdp::program::XdpProgram;

/// Serves `vhid` on `ifindex` (no allow-list) with the HMAC keys of
/// `password` over `vips`.
pub fn serve_keyed(p: &mut XdpProgram, ifindex: u32, vhid: u8, password: &[u8], vips: &[IpAddr]) {
    p.serve_vhid(ifindex, vhid, &[]).unwrap();
    let keys = VhidKeys::new(password, vhid, vips).unwrap();
    let vk = VhidKey {
        ifindex,
        vhid: u32::from(vhid),
    };
    p.set_hmac_keys(vk, Some(&keys)).unwrap();
}
