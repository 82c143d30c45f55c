//! Where carpd-xdp keeps its files unless told otherwise.

/// Default configuration file, read when neither `--config` nor UCARP-style
/// instance options are given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/carpd-xdp/carpd-xdp.toml";
/// Default unix socket of a daemon run from a configuration file.
pub const DEFAULT_STATUS_SOCKET: &str = "/run/carpd-xdp.sock";
/// Where `carpd-xdp status` looks for the sockets of every daemon: the
/// shared one and UCARP-style `carpd-xdp-<interface>-<vhid>.sock`.
pub const DEFAULT_RUN_DIR: &str = "/run";
/// Default of `global.state_dir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/carpd-xdp";
