//! The effective configuration as TOML, for `carpd-xdp check-config`: every
//! default filled in, passwords shown only by their source. A file whose
//! passwords come from files or variables prints as TOML that loads back to
//! the same configuration.

use std::fmt::Write;
use std::path::Path;

use super::model::{Config, Global, HealthCheck, InstanceConfig};
use super::password::PasswordSource;

/// A TOML string literal, escaped.
fn quote(text: &str) -> String {
    ::toml::Value::String(text.to_owned()).to_string()
}

fn quote_path(path: &Path) -> String {
    quote(&path.to_string_lossy())
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().map(|item| quote(&item)).collect();
    format!("[{}]", items.join(", "))
}

/// Renders the effective configuration (passwords redacted).
pub fn render(config: &Config) -> String {
    let mut out = String::new();
    for warning in &config.warnings {
        let _ = writeln!(out, "# warning: {warning}");
    }
    render_global(&mut out, &config.global);
    for instance in &config.instances {
        render_instance(&mut out, instance);
    }
    out
}

fn render_global(out: &mut String, global: &Global) {
    let _ = writeln!(out, "[global]");
    let _ = writeln!(out, "xdp_mode = {}", quote(global.xdp_mode.name()));
    let _ = writeln!(out, "status_socket = {}", quote_path(&global.status_socket));
    let _ = writeln!(out, "state_dir = {}", quote_path(&global.state_dir));
    match global.metrics {
        Some(addr) => {
            let _ = writeln!(out, "metrics = {}", quote(&addr.to_string()));
        }
        None => out.push_str("# metrics: off\n"),
    }
    let facility = global
        .log
        .facility
        .map_or_else(|| "none".to_owned(), |f| f.to_string());
    let _ = writeln!(out, "log_facility = {}", quote(&facility));
    let _ = writeln!(out, "log_format = {}", quote(global.log.format.name()));
    let _ = writeln!(out, "debug = {}", global.log.debug);
    let _ = writeln!(out, "daemonize = {}", global.daemonize);
    let _ = writeln!(out, "realtime_priority = {}", global.realtime.priority);
    let _ = writeln!(out, "lock_memory = {}", global.realtime.lock_memory);
    let _ = writeln!(out, "auto_realtime = {}", global.realtime.auto);
    let _ = writeln!(out, "\n[global.rate_limit]");
    let _ = writeln!(out, "rate = {}", global.rate_limit.rate);
    let _ = writeln!(out, "burst = {}", global.rate_limit.burst);
}

fn render_instance(out: &mut String, inst: &InstanceConfig) {
    let _ = writeln!(out, "\n[[instance]]");
    let _ = writeln!(out, "interface = {}", quote(&inst.interface));
    if let Some(label) = &inst.label {
        let _ = writeln!(out, "label = {}", quote(label));
    }
    let _ = writeln!(out, "vhid = {}", inst.vhid);
    match inst.srcip {
        Some(srcip) => {
            let _ = writeln!(out, "srcip = {}", quote(&srcip.to_string()));
        }
        None => out.push_str("# srcip: the interface's address\n"),
    }
    let _ = writeln!(
        out,
        "vips = {}",
        list(inst.vips.iter().map(ToString::to_string))
    );
    let _ = writeln!(out, "advbase_secs = {}", inst.advbase_secs);
    let _ = writeln!(out, "advskew = {}", inst.advskew);
    let _ = writeln!(out, "deadratio = {}", inst.deadratio);
    let _ = writeln!(out, "master_down = {}", quote(inst.master_down.name()));
    let _ = writeln!(out, "preempt = {}", inst.preempt);
    let _ = writeln!(out, "neutral = {}", inst.neutral);
    let _ = writeln!(out, "shutdown_on_exit = {}", inst.shutdown_on_exit);
    let _ = writeln!(out, "ignore_ifstate = {}", inst.ignore_ifstate);
    let _ = writeln!(out, "virtual_mac = {}", inst.virtual_mac);
    match inst.password.source() {
        PasswordSource::File(path) => {
            let _ = writeln!(out, "password_file = {}", quote_path(path));
        }
        PasswordSource::Env(var) => {
            let _ = writeln!(out, "password_env = {}", quote(var));
        }
        other => {
            let _ = writeln!(out, "# password: <redacted> ({other})");
        }
    }
    let scripts = &inst.scripts;
    for (key, path) in [
        ("upscript", &scripts.upscript),
        ("downscript", &scripts.downscript),
    ] {
        if let Some(path) = path {
            let _ = writeln!(out, "{key} = {}", quote_path(path));
        }
    }
    if let Some(xparam) = &scripts.xparam {
        let _ = writeln!(out, "xparam = {}", quote(xparam));
    }
    let _ = writeln!(out, "script_timeout_secs = {}", scripts.timeout_secs);
    let _ = writeln!(out, "replay = {}", quote(inst.replay.name()));
    if let Some(ms) = inst.replay_window_ms {
        let _ = writeln!(out, "replay_window_ms = {ms}");
    }
    let _ = writeln!(
        out,
        "hmac_link_local = {}",
        quote(inst.hmac_link_local.name())
    );
    let _ = writeln!(
        out,
        "unicast_peers = {}",
        list(inst.unicast_peers.iter().map(ToString::to_string))
    );
    let _ = writeln!(
        out,
        "peers = {}",
        list(inst.peers.iter().map(ToString::to_string))
    );
    match inst.mcast {
        Some(group) => {
            let _ = writeln!(out, "mcast = {}", quote(&group.to_string()));
        }
        None => out.push_str("# mcast: 224.0.0.18 / ff02::12\n"),
    }
    let _ = writeln!(out, "broadcast_mac = {}", inst.broadcast_mac);
    let _ = writeln!(
        out,
        "announce = {{ count = {}, interval_ms = {} }}",
        inst.announce.count, inst.announce.interval_ms
    );
    for check in &inst.health_checks {
        render_health_check(out, check);
    }
}

fn render_health_check(out: &mut String, check: &HealthCheck) {
    let _ = writeln!(out, "\n[[instance.health_check]]");
    let _ = writeln!(out, "command = {}", list(check.command.iter().cloned()));
    let _ = writeln!(out, "interval_secs = {}", check.interval_secs);
    let _ = writeln!(out, "timeout_secs = {}", check.timeout_secs);
    let _ = writeln!(out, "weight = {}", check.weight);
}
