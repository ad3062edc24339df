//! The shape of `host/src`: its modules depend on each other in one direction (no import cycle,
//! at the level of files), and the README's layout table names every top-level module.
//!
//! The import graph is read from the source text: `crate::…`, `super::…` and `self::…` paths
//! (use-trees included) and a `mod.rs`'s bare paths into its own child modules; test modules at
//! the end of a file are left out. A cycle fails the test with its files, in order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Module path (`capabilities::authentik::oauth2`) → file.
fn modules(dir: &Path, out: &mut BTreeMap<String, PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            modules(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(src()).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                parts.clear();
            }
            out.insert(parts.join("::"), path);
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The code of a file without comments and without a trailing `#[cfg(test)] mod`.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path written after `crate`, `super` or `self` (use-trees expanded one level), as
/// segments, with the keyword.
fn paths(code: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let boundary = i == 0 || !is_ident(chars[i - 1]);
        let word: String = chars[i..].iter().take_while(|c| is_ident(**c)).collect();
        if !boundary || word.is_empty() {
            i += 1;
            continue;
        }
        i += word.len();
        if !matches!(word.as_str(), "crate" | "super" | "self") {
            continue;
        }
        let mut segments = Vec::new();
        let mut group = None;
        while chars[i..].starts_with(&[':', ':']) {
            i += 2;
            if chars.get(i) == Some(&'{') {
                let mut depth = 0;
                let start = i + 1;
                while i < chars.len() {
                    match chars[i] {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                group = Some(chars[start..i.min(chars.len())].iter().collect::<String>());
                break;
            }
            let seg: String = chars[i..].iter().take_while(|c| is_ident(**c)).collect();
            if seg.is_empty() {
                break;
            }
            i += seg.len();
            segments.push(seg);
        }
        match group {
            Some(group) => {
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars().chain([',']) {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            let head: Vec<String> = item
                                .split(" as ")
                                .next()
                                .unwrap_or("")
                                .split("::")
                                .map(|s| s.trim().to_string())
                                .take_while(|s| !s.is_empty() && s.chars().all(is_ident))
                                .collect();
                            let mut full = segments.clone();
                            full.extend(head);
                            out.push((word.clone(), full));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
            }
            // `pub(super)`, `&self`: a bare keyword names no module.
            None if segments.is_empty() => {}
            None => out.push((word.clone(), segments)),
        }
    }
    out
}

/// File-level import graph: module → modules it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut mods = BTreeMap::new();
    modules(&src(), &mut mods);
    let resolve = |parts: &[String]| -> Option<String> {
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| mods.contains_key(m))
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &mods {
        let me: Vec<String> = if module.is_empty() {
            Vec::new()
        } else {
            module.split("::").map(str::to_string).collect()
        };
        let is_mod_rs = file.ends_with("mod.rs") || module.is_empty();
        let code = code(file);
        let mut used = BTreeSet::new();
        for (keyword, mut segments) in paths(&code) {
            let mut base = match keyword.as_str() {
                "crate" => Vec::new(),
                "super" => me[..me.len().saturating_sub(1)].to_vec(),
                _ => me.clone(),
            };
            while segments.first().is_some_and(|s| s == "super") {
                base.pop();
                segments.remove(0);
            }
            base.extend(segments);
            if let Some(target) = resolve(&base) {
                used.insert(target);
            }
        }
        // A mod.rs reaching into a child module by its bare name (`files::read`).
        if is_mod_rs {
            for child in mods.keys() {
                let Some(name) = child
                    .strip_prefix(&format!("{module}::"))
                    .filter(|_| !module.is_empty())
                else {
                    continue;
                };
                if !name.contains("::") && code.contains(&format!("{name}::")) {
                    let bare = code
                        .match_indices(&format!("{name}::"))
                        .any(|(at, _)| !code[..at].ends_with(|c: char| is_ident(c) || c == ':'));
                    if bare {
                        used.insert(child.clone());
                    }
                }
            }
        }
        used.remove(module);
        used.remove("");
        edges.insert(module.clone(), used);
    }
    edges
}

/// A cycle through `start`, if any (depth-first search).
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut found = stack[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, stack, done) {
                return Some(found);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|start| visit(start, edges, &mut Vec::new(), &mut done))
}

#[test]
fn the_reader_finds_the_imports_it_must() {
    let found = paths("use super::state::{FlowError, Mode};\npub(super) fn f(&self) { crate::a::b(); }");
    assert_eq!(
        found,
        vec![
            ("super".to_string(), vec!["state".to_string(), "FlowError".to_string()]),
            ("super".to_string(), vec!["state".to_string(), "Mode".to_string()]),
            ("crate".to_string(), vec!["a".to_string(), "b".to_string()]),
        ]
    );
    // A known edge is seen: the runner uses the engine.
    let edges = graph();
    assert!(edges["runner"].contains("runtime"), "{:?}", edges["runner"]);
    assert!(edges["capabilities::authentik::oauth2"].contains("capabilities::state"));
    // And a cycle would be found.
    let mut with_cycle = edges.clone();
    with_cycle.get_mut("bindings").unwrap().insert("runner".into());
    assert!(cycle(&with_cycle).is_some());
}

#[test]
fn host_src_has_no_import_cycle() {
    let edges = graph();
    assert!(edges.len() > 30, "{} modules found", edges.len());
    if let Some(found) = cycle(&edges) {
        panic!(
            "import cycle in host/src: {}\n(move the shared item down into a module both can use)",
            found.join(" -> ")
        );
    }
}

#[test]
fn the_readme_layout_names_every_top_level_module() {
    let readme = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `host/` |"))
        .expect("the README's layout table has a `host/` row");
    let mut mods = BTreeMap::new();
    modules(&src(), &mut mods);
    let top: BTreeSet<&str> = mods
        .keys()
        .filter_map(|m| m.split("::").next())
        .filter(|m| !m.is_empty())
        .collect();
    let missing: Vec<&&str> = top.iter().filter(|m| !row.contains(&format!("`{m}`"))).collect();
    assert!(missing.is_empty(), "README's host/ row lacks {missing:?}:\n{row}");
}
