//! carpd-xdp's TC program: the same receive path as the XDP program, run
//! from the interface's tcx ingress hook, for a daemon that cannot have the
//! XDP hook because another program (typically the first carpd-xdp process on
//! the interface, in UCARP-style setups of one process per vhid) holds it.
//!
//! It shares everything with the XDP program: [`inspect`], the maps (so one
//! process's ring buffer and counters serve both), [`Frame`], the
//! [`Maps`] tables, [`count`] and [`deliver`]. Only the verdicts differ: in a
//! tcx chain a program that returns `TCX_NEXT` hands the frame to the next
//! program (another daemon's), any other verdict ends the chain. So every
//! frame this daemon cannot claim (not CARP, malformed, another vhid) goes on
//! with `TCX_NEXT`; handled frames of a served vhid are dropped (`TCX_DROP`),
//! or go on when the daemon sets `SETTINGS_PASS_HANDLED`.
//!
//! XDP and TC programs both run with bottom halves disabled and never nest on
//! one CPU, so the per-CPU scratch and layout slots the tables use are as
//! safe here as in the XDP program.

use aya_ebpf::bindings::tcx_action_base::{TCX_DROP, TCX_NEXT};
use aya_ebpf::macros::classifier;
use aya_ebpf::programs::TcContext;
use carp_common::constants::{ETH_HLEN, ETH_P_IP, ETH_P_IPV6, IPPROTO_CARP};
use carp_common::inspect::{inspect, Verdict};

use super::{count, deliver, settings, Frame, Maps};

/// More than the longest advert (Ethernet, 802.1Q, IPv4 with options or
/// IPv6, CARP): what is made directly readable of a protocol-112 frame.
const ADVERT_PULL_BYTES: u32 = 256;

#[classifier]
pub fn carp_tc(ctx: TcContext) -> i32 {
    match try_carp_tc(&ctx) {
        Ok(action) => action,
        Err(()) => TCX_NEXT,
    }
}

#[inline(always)]
fn try_carp_tc(ctx: &TcContext) -> Result<i32, ()> {
    linearize_carp(ctx);
    let frame = Frame {
        start: ctx.data(),
        end: ctx.data_end(),
    };
    // SAFETY: reads a field of the context the kernel handed us.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    // The stack takes an 802.1Q tag off the frame before the TC hook and
    // keeps it in the skb, where the tables look for it (protocol-112 frames
    // only): a VLAN's frame goes on to its VLAN interface.
    let mut maps = Maps { skb: ctx.skb.skb };
    let outcome = match inspect(&frame, ifindex, &mut maps) {
        Verdict::NotCarp => return Ok(TCX_NEXT),
        Verdict::Drop(reason) => reason,
        Verdict::Advert(at) => deliver(&frame, &at, ifindex),
    };
    count(outcome);
    // As in the XDP program, but "pass" is TCX_NEXT: the next daemon's
    // program sees what this one does not claim.
    if !outcome.for_served_vhid() || settings().pass_handled() {
        Ok(TCX_NEXT)
    } else {
        Ok(TCX_DROP)
    }
}

/// A driver may leave part of a frame in page fragments, out of reach of
/// direct packet access. For a protocol-112 frame only, makes its first
/// [`ADVERT_PULL_BYTES`] readable; other frames are not touched (one helper
/// call, and only for frames not already linear).
#[inline(always)]
fn linearize_carp(ctx: &TcContext) {
    let linear = ctx.data_end() - ctx.data();
    let len = ctx.len();
    if linear >= len as usize {
        return;
    }
    // skb->protocol: the EtherType after any VLAN tag the stack removed.
    let proto_at = match u16::from_be(ctx.skb.protocol() as u16) {
        ETH_P_IP => ETH_HLEN + 9,
        ETH_P_IPV6 => ETH_HLEN + 6,
        _ => return,
    };
    if ctx.load::<u8>(proto_at) == Ok(IPPROTO_CARP) {
        // On failure the frame stays as it is: inspect counts it truncated.
        let _ = ctx.pull_data(len.min(ADVERT_PULL_BYTES));
    }
}
