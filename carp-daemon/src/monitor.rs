//! `carpd-xdp monitor`: attach the receive path to interfaces and print every
//! advert that passes validation, plus the per-reason counters on request.
//! A diagnostic tool for operators and the harness of the receive-path tests.

use crate::xdp::mode::XdpMode;

/// Arguments of `carpd-xdp monitor`.
#[derive(Clone, Debug, clap::Args)]
pub struct MonitorArgs {
    /// Interface to listen on (repeat for several).
    #[arg(short = 'i', long = "interface", required = true)]
    pub interfaces: Vec<String>,
    /// Virtual host id to accept (repeat for several).
    #[arg(short = 'v', long = "vhid", required = true, value_parser = clap::value_parser!(u8).range(1..))]
    pub vhids: Vec<u8>,
    /// Receive path: auto (native, then skb, then off), native, skb or off.
    #[arg(long, value_enum, default_value_t = XdpMode::Auto)]
    pub xdp_mode: XdpMode,
    /// Adverts per second accepted from one source (0: no limit).
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// Burst of adverts accepted from one source above the rate.
    #[arg(long, default_value_t = 20)]
    pub burst: u32,
    /// Pass handled adverts on to the kernel stack (so tcpdump sees them).
    #[arg(long)]
    pub pass_handled: bool,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}
