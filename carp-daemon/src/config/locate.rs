//! From byte offsets in a TOML file to line numbers and field paths.
//!
//! The TOML parser reports errors (unknown key, wrong type, missing key) with
//! a byte span and a message naming the key, but not the table it is in. The
//! table is recovered here by reading the headers above the span, so such
//! errors read like validation errors: `file:12: instance[1].advskw: ...`.

use super::error::{At, ConfigError};

/// A TOML parse or schema error of `src`, located at `file:line: field`.
/// An error the parser finds only lines after an unclosed `[`, `{` or
/// multi-line string is put on the line that opened it.
pub fn syntax_error(
    src: &str,
    at: &dyn Fn(usize, String) -> At,
    err: &toml::de::Error,
) -> ConfigError {
    let mut offset = err.span().map_or(0, |span| span.start);
    let mut message = err
        .message()
        .trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ");
    if let Some((open, what)) = unclosed(src, offset) {
        message = format!(
            "{message} (the {what} opened on line {} is not closed before line {})",
            line_of(src, open),
            line_of(src, offset)
        );
        offset = open;
    }
    let table = table_at(src, offset);
    // A missing or unknown key is named in the message; otherwise the key is
    // the one on the line the parser stopped at.
    let key = if message.starts_with("missing field") || message.starts_with("unknown field") {
        quoted_name(&message).map(str::to_owned)
    } else {
        key_on_line(src, offset)
    };
    let field = match key {
        Some(key) => join(&table, &key),
        None if table.is_empty() => "(top level)".to_owned(),
        None => table,
    };
    ConfigError::Syntax {
        at: at(offset, field),
        message,
    }
}

/// Where the lexer is while looking for unclosed brackets and strings.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lex {
    Normal,
    Comment,
    Basic,
    Literal,
    MultiBasic(usize),
    MultiLiteral(usize),
}

/// The `[`, `{` or multi-line string still open at `offset` that an error
/// there most likely comes from: one opened on an earlier line, when the
/// error's line starts a new key or table (or the string runs to the end).
fn unclosed(src: &str, offset: usize) -> Option<(usize, &'static str)> {
    let end = offset.min(src.len());
    let bytes = src.as_bytes();
    let mut open: Vec<(usize, u8)> = Vec::new();
    let mut state = Lex::Normal;
    let mut i = 0;
    while i < end {
        let b = bytes[i];
        let starts = |s: &str| src.as_bytes()[i..].starts_with(s.as_bytes());
        match state {
            Lex::Normal => match b {
                b'#' => state = Lex::Comment,
                b'"' if starts("\"\"\"") => {
                    state = Lex::MultiBasic(i);
                    i += 2;
                }
                b'\'' if starts("'''") => {
                    state = Lex::MultiLiteral(i);
                    i += 2;
                }
                b'"' => state = Lex::Basic,
                b'\'' => state = Lex::Literal,
                b'[' | b'{' => open.push((i, b)),
                b']' | b'}' => {
                    open.pop();
                }
                _ => {}
            },
            Lex::Comment | Lex::Basic | Lex::Literal if b == b'\n' => state = Lex::Normal,
            Lex::Comment => {}
            Lex::Basic | Lex::MultiBasic(_) if b == b'\\' => i += 1,
            Lex::Basic if b == b'"' => state = Lex::Normal,
            Lex::Literal if b == b'\'' => state = Lex::Normal,
            Lex::MultiBasic(_) if starts("\"\"\"") => {
                state = Lex::Normal;
                i += 2;
            }
            Lex::MultiLiteral(_) if starts("'''") => {
                state = Lex::Normal;
                i += 2;
            }
            _ => {}
        }
        i += 1;
    }
    let line = line_of(src, offset);
    if let Lex::MultiBasic(start) | Lex::MultiLiteral(start) = state {
        return (line_of(src, start) < line).then_some((start, "multi-line string"));
    }
    let &(start, bracket) = open.last()?;
    let line_start = src[..end].rfind('\n').map_or(0, |i| i + 1);
    let text = src[line_start..]
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start();
    let new_statement = key_on_line(src, offset).is_some()
        || text.starts_with("[[")
        || (text.starts_with('[') && text.trim_end().ends_with(']') && !text.contains(','));
    let what = if bracket == b'[' { "[" } else { "{" };
    (line_of(src, start) < line && new_statement).then_some((start, what))
}

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
    fn unclosed_brackets_and_strings_are_found_where_they_open() {
        let src = "[[instance]]\nvips = [\"a\",\n# c\nvhid = 1\n";
        assert_eq!(unclosed(src, src.find("vhid").unwrap()), Some((20, "[")));
        let src = "[[instance]]\nannounce = { count = 3\n\nvhid = 1\n";
        assert_eq!(unclosed(src, src.find("vhid").unwrap()), Some((24, "{")));
        let src = "x = \"\"\"abc\n\nvhid = 1\n";
        assert_eq!(unclosed(src, src.len()), Some((4, "multi-line string")));
        // A multi-line list with an error inside it: the error's own line.
        let src = "vips = [\n  \"a\",\n  b,\n]\n";
        assert_eq!(unclosed(src, src.find("b,").unwrap()), None);
        // Brackets inside strings and comments do not count.
        let src = "x = \"[\" # {\ny = '['\nz = 1 2\n";
        assert_eq!(unclosed(src, src.find("2").unwrap()), None);
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
