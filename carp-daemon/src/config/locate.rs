//! From byte offsets in a TOML file to line numbers and field paths.
//!
//! The TOML parser reports errors (unknown key, wrong type, missing key) with
//! a byte span and a message naming the key, but not the table it is in. The
//! table is recovered here by reading the headers above the span, so such
//! errors read like validation errors: `file:12: instance[1].advskw: ...`.

/// 1-based line holding byte `offset` of `src`.
pub fn line_of(src: &str, offset: usize) -> usize {
    let end = offset.min(src.len());
    src.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Dotted path of the table open at byte `offset`, e.g. `instance[1]`,
/// `instance[0].health_check[2]`, `global`; empty at top level.
pub fn table_at(src: &str, offset: usize) -> String {
    let mut path = String::new();
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut pos = 0;
    for line in src.split_inclusive('\n') {
        if pos > offset {
            break;
        }
        pos += line.len();
        let line = line.trim();
        let (array, name) = if let Some(rest) = line.strip_prefix("[[") {
            (true, rest.split("]]").next().unwrap_or_default())
        } else if let Some(rest) = line.strip_prefix('[') {
            (false, rest.split(']').next().unwrap_or_default())
        } else {
            continue;
        };
        let name: String = name.split('.').map(str::trim).collect::<Vec<_>>().join(".");
        path = with_indices(&name, &counts);
        if array {
            let count = match counts.iter_mut().find(|(key, _)| *key == name) {
                Some((_, n)) => {
                    *n += 1;
                    *n - 1
                }
                None => {
                    counts.push((name.clone(), 1));
                    0
                }
            };
            // A new element of `instance` restarts the numbering of its
            // sub-arrays (`instance.health_check`).
            let prefix = format!("{name}.");
            for (key, n) in counts.iter_mut() {
                if key.starts_with(&prefix) {
                    *n = 0;
                }
            }
            path = format!("{path}[{count}]");
        }
    }
    path
}

/// `instance.health_check` → `instance[N].health_check`, with N the current
/// element of each enclosing array of tables.
fn with_indices(name: &str, counts: &[(String, usize)]) -> String {
    let mut out = String::new();
    let mut prefix = String::new();
    let parts: Vec<&str> = name.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !prefix.is_empty() {
            prefix.push('.');
            out.push('.');
        }
        prefix.push_str(part);
        out.push_str(part);
        let last = i + 1 == parts.len();
        if !last {
            if let Some((_, n)) = counts.iter().find(|(key, _)| *key == prefix) {
                out.push_str(&format!("[{}]", n.saturating_sub(1)));
            }
        }
    }
    out
}

/// The key of a `key = value` line, if the line at `offset` is one.
pub fn key_on_line(src: &str, offset: usize) -> Option<String> {
    let start = src[..offset.min(src.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = src[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    plain.then(|| key.to_owned())
}

/// The name in backquotes of a serde message such as "unknown field `x`".
pub fn quoted_name(message: &str) -> Option<&str> {
    let rest = message.split_once('`')?.1;
    Some(rest.split_once('`')?.0)
}

/// Joins a table path and a key: `instance[0]` + `vhid`.
pub fn join(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_owned()
    } else {
        format!("{table}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "[global]\nxdp_mode = \"auto\"\n\n[[instance]]\nvhid = 1\n\
        [[instance.health_check]]\nweight = 1\n[[instance.health_check]]\nweight = 2\n\
        [[instance]]\nvhid = 2\n[instance.announce]\ncount = 1\n[[instance.health_check]]\nweight = 3\n";

    fn offset_of(needle: &str) -> usize {
        DOC.find(needle).unwrap()
    }

    #[test]
    fn tables_are_numbered_per_enclosing_element() {
        assert_eq!(table_at(DOC, offset_of("xdp_mode")), "global");
        assert_eq!(table_at(DOC, offset_of("vhid = 1")), "instance[0]");
        assert_eq!(
            table_at(DOC, offset_of("weight = 1")),
            "instance[0].health_check[0]"
        );
        assert_eq!(
            table_at(DOC, offset_of("weight = 2")),
            "instance[0].health_check[1]"
        );
        assert_eq!(table_at(DOC, offset_of("vhid = 2")), "instance[1]");
        assert_eq!(
            table_at(DOC, offset_of("count = 1")),
            "instance[1].announce"
        );
        assert_eq!(
            table_at(DOC, offset_of("weight = 3")),
            "instance[1].health_check[0]"
        );
    }

    #[test]
    fn lines_and_keys() {
        assert_eq!(line_of(DOC, 0), 1);
        assert_eq!(line_of(DOC, offset_of("vhid = 2")), 11);
        assert_eq!(
            key_on_line(DOC, offset_of("vhid = 2") + 3).as_deref(),
            Some("vhid")
        );
        assert_eq!(key_on_line(DOC, offset_of("[[instance]]")), None);
        assert_eq!(
            quoted_name("unknown field `advskw`, expected one of"),
            Some("advskw")
        );
    }
}
