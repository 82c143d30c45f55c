//! `[[sync_group]]` and the members' `sync_group`: what parses, and one
//! exact error per rule (undefined group, group without member, duplicate
//! name, members that would not elect the same host).

use std::path::Path;

use carp_daemon::config::{self, SyncGroupConfig};

use super::no_env;

fn member(iface: &str, vhid: u8, extra: &str) -> String {
    format!(
        "[[instance]]\ninterface = \"{iface}\"\nvhid = {vhid}\nvips = [\"192.0.{vhid}.10/24\"]\npassword = \"pw\"\nadvskew = 10\n{extra}\n"
    )
}

const GROUP: &str = "[[sync_group]]\nname = \"gw\"\nupscript = \"up.sh\"\nconntrackd_config = \"/etc/conntrackd/conntrackd.conf\"\n";

fn parse(text: &str) -> Result<config::Config, String> {
    config::parse_str(text, Path::new("/etc/carpd-xdp/t.toml"), &no_env).map_err(|e| e.to_string())
}

#[test]
fn members_on_two_interfaces_form_one_group() {
    let text = format!(
        "{}{}{GROUP}",
        member("lan0", 1, "sync_group = \"gw\""),
        member("wan0", 2, "sync_group = \"gw\"")
    );
    let config = parse(&text).unwrap();
    assert_eq!(
        config.sync_groups,
        vec![SyncGroupConfig {
            name: "gw".into(),
            upscript: Some("/etc/carpd-xdp/up.sh".into()),
            downscript: None,
            conntrackd_config: Some("/etc/conntrackd/conntrackd.conf".into()),
        }]
    );
    let groups: Vec<_> = config
        .instances
        .iter()
        .map(|i| i.sync_group.as_deref())
        .collect();
    assert_eq!(groups, vec![Some("gw"), Some("gw")]);
}

#[test]
fn an_undefined_group_is_refused() {
    let text = member("lan0", 1, "sync_group = \"gateway\"");
    assert_eq!(
        parse(&text).unwrap_err(),
        "/etc/carpd-xdp/t.toml:7: instance[0].sync_group: sync group \"gateway\" is not defined (no [[sync_group]] is defined)"
    );
    let text = format!("{}{GROUP}", member("lan0", 1, "sync_group = \"gateway\""));
    assert!(
        parse(&text)
            .unwrap_err()
            .ends_with("is not defined (defined: \"gw\")"),
        "{text}"
    );
}

#[test]
fn a_group_without_member_is_refused() {
    let text = format!("{}{GROUP}", member("lan0", 1, ""));
    assert_eq!(
        parse(&text).unwrap_err(),
        "/etc/carpd-xdp/t.toml:9: sync_group[0].name: no instance belongs to sync group \"gw\"; set sync_group = \"gw\" in its members"
    );
}

#[test]
fn a_group_defined_twice_is_refused() {
    let text = format!("{}{GROUP}{GROUP}", member("lan0", 1, "sync_group = \"gw\""));
    assert_eq!(
        parse(&text).unwrap_err(),
        "/etc/carpd-xdp/t.toml:13: sync_group[1].name: sync group \"gw\" is already defined at line 9"
    );
}

#[test]
fn members_must_rank_alike() {
    for (extra, key, value) in [
        ("advskew = 20", "advskew", "20 differs from advskew 10"),
        (
            "preempt = true",
            "preempt",
            "true differs from preempt false",
        ),
        (
            "advbase_secs = 2",
            "advbase_secs",
            "2 differs from advbase_secs 1",
        ),
    ] {
        let second = member("wan0", 2, &format!("sync_group = \"gw\"\n{extra}")).replace(
            "advskew = 10\nsync_group = \"gw\"\nadvskew = 20",
            "sync_group = \"gw\"\nadvskew = 20",
        );
        let text = format!(
            "{}{second}{GROUP}",
            member("lan0", 1, "sync_group = \"gw\"")
        );
        let err = parse(&text).unwrap_err();
        assert!(
            err.contains(&format!("instance[1].sync_group: {key} {value} of instance[0] in sync group \"gw\": members must share advbase_secs, advskew and preempt")),
            "{err}"
        );
    }
}

#[test]
fn a_group_key_misspelt_gets_a_suggestion() {
    let text = format!(
        "{}[[sync_group]]\nname = \"gw\"\nconntrackd_conf = \"c\"\n",
        member("lan0", 1, "sync_group = \"gw\"")
    );
    let err = parse(&text).unwrap_err();
    assert!(err.contains("did you mean conntrackd_config?"), "{err}");
}
