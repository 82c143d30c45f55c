//! How the receive path is set up on an interface.

use serde::Deserialize;

/// `--xdp-mode`: where adverts are received and validated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native (driver) XDP, else generic (skb) XDP, else the TC program
    /// (tcx ingress), else the fallback socket.
    #[default]
    Auto,
    /// Native (driver) XDP only; fail if the driver cannot.
    Native,
    /// Generic (skb) XDP only.
    Skb,
    /// The TC program on the tcx ingress hook only (kernel 6.6 or later):
    /// the same checks in the kernel, after the skb is built; several
    /// processes' programs share an interface.
    Tc,
    /// No XDP: a packet socket with the same validation in userspace.
    Off,
}

impl XdpMode {
    /// The lowercase name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            XdpMode::Auto => "auto",
            XdpMode::Native => "native",
            XdpMode::Skb => "skb",
            XdpMode::Tc => "tc",
            XdpMode::Off => "off",
        }
    }
}

impl std::fmt::Display for XdpMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::XdpMode;
    use clap::ValueEnum;

    #[test]
    fn every_mode_parses_from_its_name_on_the_command_line_and_in_toml() {
        #[derive(serde::Deserialize)]
        struct Doc {
            xdp_mode: XdpMode,
        }
        for mode in XdpMode::value_variants() {
            assert_eq!(XdpMode::from_str(mode.name(), false), Ok(*mode));
            let doc: Doc = toml::from_str(&format!("xdp_mode = \"{mode}\"")).unwrap();
            assert_eq!(doc.xdp_mode, *mode);
        }
        assert_eq!(XdpMode::from_str("tc", false), Ok(XdpMode::Tc));
    }
}
