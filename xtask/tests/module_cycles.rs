//! No two modules of a crate import each other, directly or through others:
//! each file has one place in its crate's layering (the core below the
//! daemon's I/O, the configuration below the command line, ...). A module
//! may use its ancestors and its descendants, as Rust's `mod` and `super`
//! make it.
//!
//! The paths are read from the source text (`crate::…` and `super::…`,
//! brace groups included; comments and the `#[cfg(test)]` part of a file are
//! left out), which is all this check needs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates whose modules are checked.
const CRATES: [&str; 7] = [
    "carp-bench",
    "carp-testnet",
    "carp-common",
    "carp-proto",
    "carp-daemon",
    "carp-flood",
    "xtask",
];

/// Module path (`daemon::instance`, `` for the root) → source text.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            found.insert(parts.join("::"), code_of(&text));
        }
    }
    found
}

/// The text without line comments and without the test part.
fn code_of(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Paths following `prefix` in `code`, a brace group giving one path per
/// item (`super::{a::X, b}` → `a::X`, `b`).
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let head: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        match rest[head.len()..].strip_prefix('{') {
            Some(group) => paths.extend(
                group_items(group)
                    .into_iter()
                    .map(|item| format!("{head}{item}")),
            ),
            None => paths.push(head),
        }
    }
    paths
}

/// The leading path of each item of a brace group, up to its closing brace.
fn group_items(group: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut depth = 0;
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => items.push(String::new()),
            c if depth == 0 => items.last_mut().unwrap().push(c),
            _ => {}
        }
    }
    items
        .iter()
        .map(|item| {
            item.trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect()
        })
        .collect()
}

/// The longest module of `known` that `path` starts with.
fn module_of(path: &[&str], known: &BTreeMap<String, String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| known.contains_key(m))
}

/// True when `a` is `b`'s ancestor or descendant (or `b` itself).
fn related(a: &str, b: &str) -> bool {
    let under = |x: &str, y: &str| y.is_empty() || x == y || x.starts_with(&format!("{y}::"));
    under(a, b) || under(b, a)
}

/// Module → the unrelated modules it uses.
fn graph(known: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges = BTreeMap::new();
    for (module, code) in known {
        let parent: Vec<&str> = module.split("::").filter(|p| !p.is_empty()).collect();
        let parent = &parent[..parent.len().saturating_sub(1)];
        let mut used = BTreeSet::new();
        let absolute = paths_after(code, "crate::")
            .into_iter()
            .map(|p| p.split("::").map(str::to_owned).collect::<Vec<_>>());
        let relative = paths_after(code, "super::").into_iter().map(|p| {
            let mut path: Vec<String> = parent.iter().map(|s| s.to_string()).collect();
            for part in p.split("::") {
                match part {
                    "super" => _ = path.pop(),
                    part => path.push(part.to_owned()),
                }
            }
            path
        });
        for path in absolute.chain(relative) {
            let parts: Vec<&str> = path
                .iter()
                .map(String::as_str)
                .filter(|s| !s.is_empty())
                .collect();
            if let Some(target) = module_of(&parts, known) {
                if !related(module, &target) {
                    used.insert(target);
                }
            }
        }
        edges.insert(module.clone(), used);
    }
    // A use between two subtrees is a use between their tops too: `a::x`
    // using `b::y` makes `a` use `b`, so that `b` using `a` is a cycle.
    let direct: Vec<(String, String)> = edges
        .iter()
        .flat_map(|(m, used)| used.iter().map(move |t| (m.clone(), t.clone())))
        .collect();
    for (from, to) in direct {
        let (a, b) = (from.split("::"), to.split("::"));
        let common = a.clone().zip(b.clone()).take_while(|(x, y)| x == y).count();
        let top = |m: &str| {
            m.split("::")
                .take(common + 1)
                .collect::<Vec<_>>()
                .join("::")
        };
        edges.entry(top(&from)).or_default().insert(top(&to));
    }
    edges
}

/// The cycles of `edges` (strongly connected sets of more than one module).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Reachability is enough at this size: two modules are in one cycle
    // when each reaches the other.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(m) = todo.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|m| (m, reach(m))).collect();
    let mut found: Vec<Vec<String>> = Vec::new();
    for (m, r) in &reached {
        let cycle: Vec<String> = r
            .iter()
            .filter(|o| reached.get(o).is_some_and(|back| back.contains(*m)))
            .cloned()
            .collect();
        if cycle.len() > 1 && !found.contains(&cycle) {
            found.push(cycle);
        }
    }
    found
}

fn crate_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
        .join("src")
}

#[test]
fn no_module_imports_one_that_imports_it() {
    let mut report = Vec::new();
    for name in CRATES {
        let known = modules(&crate_src(name));
        assert!(known.len() > 1, "{name}: no modules found");
        let edges = graph(&known);
        for cycle in cycles(&edges) {
            let uses: Vec<String> = cycle
                .iter()
                .map(|m| {
                    let within: Vec<&String> =
                        edges[m].iter().filter(|t| cycle.contains(t)).collect();
                    format!("{m} -> {within:?}")
                })
                .collect();
            report.push(format!("{name}: {}", uses.join("; ")));
        }
    }
    assert!(report.is_empty(), "import cycles:\n{}", report.join("\n"));
}

#[test]
fn the_reader_finds_a_cycle() {
    let known: BTreeMap<String, String> = [
        ("", ""),
        ("a", "use super::b::B;"),
        ("b", "use crate::{c::C, d};"),
        ("c", "pub use super::a::A;"),
        ("d", "use crate::a::A; // crate::b::B"),
        ("e", "use crate::e::sub::X;"),
        ("e::sub", "use super::super::d::D; use super::X;"),
        ("f", "pub use x::F;"),
        ("f::x", "use crate::g::G;"),
        ("g", "use crate::f::F;"),
    ]
    .into_iter()
    .map(|(m, code)| (m.to_owned(), code_of(code)))
    .collect();
    let edges = graph(&known);
    assert_eq!(
        cycles(&edges),
        [vec!["a", "b", "c", "d"], vec!["f", "g"]],
        "{edges:?}"
    );
    // A module's use of its own child is no edge; its child's use is its own.
    assert_eq!(edges["e"], BTreeSet::from(["d".to_owned()]));
}
