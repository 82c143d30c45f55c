//! carpd-xdp.toml(5)
