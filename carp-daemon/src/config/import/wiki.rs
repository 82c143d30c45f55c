//! The layout of Debian's old init scripts, as the French wiki sets it up:
//! `/etc/default/ucarp` (`UCARP_EXEC`, `IFCONFIG`, `OPTIONS`) and one file
//! per VIP under `/etc/ucarp/interface/` (`INTERFACE=eth0:carp0`,
//! `INSTANCE_ID`, `PASSWORD`, `VIRTUAL_ADDRESS`, `VIRTUAL_NETMASK`,
//! `SOURCE_ADDRESS`, `UCARP_BASE`...), sourced one after the other by
//! `/etc/init.d/ucarp`, which runs `$UCARP_EXEC $OPTIONS -b $UCARP_BASE -i
//! $INTERFACE -v $INSTANCE_ID -p $PASSWORD -a $VIRTUAL_ADDRESS -s
//! $SOURCE_ADDRESS` for each.

use super::settings::Var;

/// The variables of the defaults file and the per-VIP files.
pub(super) const VARIABLES: &[(&str, Var)] = &[
    ("INTERFACE", Var::Option("--interface")),
    ("INSTANCE_ID", Var::Option("--vhid")),
    ("PASSWORD", Var::Option("--pass")),
    ("PASSFILE", Var::Option("--passfile")),
    ("VIRTUAL_ADDRESS", Var::Option("--addr")),
    ("VIRTUAL_NETMASK", Var::Netmask),
    ("SOURCE_ADDRESS", Var::Option("--srcip")),
    ("UPSCRIPT", Var::Option("--upscript")),
    ("DOWNSCRIPT", Var::Option("--downscript")),
    ("XPARAM", Var::Option("--xparam")),
    // `-b $UCARP_BASE` in the init script: the advert interval.
    ("UCARP_BASE", Var::Option("--advbase")),
    ("OPTIONS", Var::Options),
    ("UCARP_OPTS", Var::Options),
    (
        "UCARP_EXEC",
        Var::Ignored("the program the init script starts; carpd-xdp.service starts carpd-xdp"),
    ),
    (
        "IFCONFIG",
        Var::Ignored("carpd-xdp adds and removes the VIP itself, with its prefix and label"),
    ),
    (
        "UCARP_PIDFILE",
        Var::Ignored("carpd-xdp.service keeps track of the daemon; `carpd-xdp status` finds it"),
    ),
    (
        "VIRTUAL_BROADCAST",
        Var::Ignored("carpd-xdp adds the VIP with its address and prefix only"),
    ),
];
