//! The core's modules form layers: no module of `src/` depends on a module that depends
//! on it again (no import cycles). Read from the sources: every `crate::...` and
//! `super::...` path outside comments and test modules is a dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`net::conn`) -> source text, for every file under `src/` but `lib.rs`.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
                continue;
            }
            let rel = path.strip_prefix(root).unwrap().with_extension("");
            let mut name = rel.to_string_lossy().replace('/', "::");
            if name == "lib" {
                continue;
            }
            if let Some(parent) = name.strip_suffix("::mod") {
                name = parent.to_string();
            }
            out.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// The code of a file without comments and without its `mod tests`.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths after `prefix` (`crate::`, `super::`): `net::conn::Conn` -> `net::conn::Conn`.
fn paths<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    code.match_indices(prefix)
        .filter(|(i, _)| {
            // Not part of a longer identifier (`mycrate::`).
            *i == 0 || !code.as_bytes()[i - 1].is_ascii_alphanumeric()
        })
        .map(|(i, _)| {
            let rest = &code[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            rest[..end].trim_end_matches(':')
        })
        .collect()
}

/// The longest module that `path` starts with.
fn resolve<'a>(path: &str, names: &'a BTreeSet<String>) -> Option<&'a String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .find_map(|n| names.get(&parts[..n].join("::")))
}

#[test]
fn the_core_has_no_import_cycles() {
    let mods = modules();
    let names: BTreeSet<String> = mods.keys().cloned().collect();
    let mut deps: BTreeMap<&String, BTreeSet<&String>> = BTreeMap::new();
    for (name, text) in &mods {
        let code = code(text);
        let parent = name.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
        let mut targets: Vec<String> = paths(&code, "crate::")
            .into_iter()
            .map(str::to_string)
            .collect();
        for p in paths(&code, "super::") {
            targets.push(if parent.is_empty() {
                p.to_string()
            } else {
                format!("{parent}::{p}")
            });
        }
        let d = deps.entry(name).or_default();
        for t in targets {
            if let Some(m) = resolve(&t, &names)
                && m != name
            {
                d.insert(m);
            }
        }
    }
    // Depth-first search for a path back to the start.
    fn reach<'a>(
        from: &'a String,
        to: &String,
        deps: &BTreeMap<&'a String, BTreeSet<&'a String>>,
        seen: &mut BTreeSet<&'a String>,
        path: &mut Vec<&'a String>,
    ) -> bool {
        for &next in deps.get(from).into_iter().flatten() {
            path.push(next);
            if next == to || (seen.insert(next) && reach(next, to, deps, seen, path)) {
                return true;
            }
            path.pop();
        }
        false
    }
    for name in mods.keys() {
        let mut path = vec![name];
        if reach(name, name, &deps, &mut BTreeSet::new(), &mut path) {
            let shown: Vec<&str> = path.iter().map(|s| s.as_str()).collect();
            panic!("import cycle: {}", shown.join(" -> "));
        }
    }
    // The layers exist as folders.
    for layer in ["net", "delivery", "pubsub", "patterns"] {
        assert!(names.contains(layer), "src/{layer}/ is missing");
    }
}
