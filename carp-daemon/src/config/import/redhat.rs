//! The layout of Red Hat's and Fedora's ucarp package: `/etc/ucarp/
//! vip-common.conf`, sourced first, then one `vip-<id>.conf` per VIP, for
//! which `/usr/libexec/ucarp/ucarp` runs `ucarp --interface=$BIND_INTERFACE
//! --pass=$PASSWORD (or --passfile=$PASSFILE) --srcip=$SOURCE_ADDRESS
//! --vhid=$ID --addr=$VIP_ADDRESS $OPTIONS --upscript=$UPSCRIPT
//! --downscript=$DOWNSCRIPT`. The vhid is the number in the file name
//! unless the file sets `ID` (or `VID`). The package's own scripts
//! (`/usr/libexec/ucarp/vip-up`, `vip-down`) add and remove the VIP as a
//! /32, which carpd-xdp does itself. Other files of the directory (the
//! password file, `vip-001.conf.example`, a README) are not configuration.

use std::path::Path;

use super::settings::Var;

/// The shared settings file.
pub const COMMON: &str = "vip-common.conf";

/// The scripts the package runs when none is configured.
pub(super) const DEFAULT_SCRIPTS: [&str; 2] =
    ["/usr/libexec/ucarp/vip-up", "/usr/libexec/ucarp/vip-down"];

/// The variables of `vip-common.conf` and `vip-<id>.conf`.
pub(super) const VARIABLES: &[(&str, Var)] = &[
    ("ID", Var::Option("--vhid")),
    ("VID", Var::Option("--vhid")),
    ("BIND_INTERFACE", Var::Option("--interface")),
    ("SOURCE_ADDRESS", Var::Option("--srcip")),
    ("VIP_ADDRESS", Var::Option("--addr")),
    ("PASSWORD", Var::Option("--pass")),
    ("PASSFILE", Var::Option("--passfile")),
    ("OPTIONS", Var::Options),
    ("UPSCRIPT", Var::Option("--upscript")),
    ("DOWNSCRIPT", Var::Option("--downscript")),
];

/// Whether `name` is a per-VIP file of this layout: `vip-<id>.conf`, not
/// `vip-common.conf`.
pub fn is_vip_file(name: &str) -> bool {
    name != COMMON
        && name
            .strip_prefix("vip-")
            .and_then(|rest| rest.strip_suffix(".conf"))
            .is_some_and(|id| !id.is_empty())
}

/// Whether `path` is a file of this layout (`vip-common.conf` or
/// `vip-<id>.conf`).
pub fn is_layout_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == COMMON || is_vip_file(n))
}

/// The id in a per-VIP file's name (`vip-001.conf`: `001`), when it is a
/// number, as the package's script takes it.
pub(super) fn id_of(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?;
    let id = name.strip_prefix("vip-")?.strip_suffix(".conf")?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}
