//! No two modules of `node/src` import each other, directly or round a
//! longer circle: between the top-level modules, and between the children
//! of each directory module. What counts is what the code uses (`use`
//! declarations and paths), read from the source; `mod` declarations of a
//! parent do not, nor do doc comments and the `#[cfg(test)]` modules.

// A test of the source text: it uses none of the crate's dependencies.
#![allow(unused_crate_dependencies)]

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// Source files under `dir`, recursively, but for test modules in files of
/// their own: `#[cfg(test)] mod tests;` in `mod.rs` or `lib.rs`, and
/// `#[cfg(test)] #[path = "x_tests.rs"] mod tests;` in any file.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut test_modules = BTreeSet::new();
    for entry in fs::read_dir(dir).expect("reading node/src") {
        let path = entry.expect("reading node/src").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let own = path
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs");
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line.trim() != "#[cfg(test)]" {
                continue;
            }
            let next = lines.next().unwrap_or("").trim();
            if let Some(file) = next
                .strip_prefix("#[path = \"")
                .and_then(|n| n.strip_suffix(".rs\"]"))
            {
                test_modules.insert(file.to_owned());
            } else if let Some(name) = next.strip_prefix("mod ").and_then(|n| n.strip_suffix(';'))
                && own
            {
                test_modules.insert(name.to_owned());
            }
        }
    }
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("reading node/src") {
        let path = entry.expect("reading node/src").path();
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        if test_modules.contains(stem.as_ref()) {
            continue;
        }
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The code of a file without comments and without its test module.
fn code_of(path: &Path) -> String {
    let text = fs::read_to_string(path).expect("reading a source file");
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines.peek().is_some_and(|next| {
                next.trim_start().starts_with("mod ") && next.trim_end().ends_with('{')
            })
        {
            break;
        }
        let line = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        code.push_str(line);
        code.push('\n');
    }
    code
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The first path segments named after `prefix` (`crate::`, `super::`) in
/// `code`: `crate::a::b` gives `a`; `crate::{a, b::c, d::{e}}` gives `a`,
/// `b` and `d`.
fn segments_after(code: &str, prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| is_ident(c) || c == ':') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            let mut ident = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !ident.is_empty() {
                            found.push(std::mem::take(&mut ident));
                        }
                        item_start = true;
                    }
                    c if depth == 0 && item_start && is_ident(c) => ident.push(c),
                    _ if depth == 0 && item_start && !ident.is_empty() => {
                        found.push(std::mem::take(&mut ident));
                        item_start = false;
                    }
                    _ => {}
                }
            }
            if !ident.is_empty() {
                found.push(ident);
            }
        } else {
            let ident: String = rest.chars().take_while(|c| is_ident(*c)).collect();
            if !ident.is_empty() {
                found.push(ident);
            }
        }
    }
    found
}

/// Whether `code` names `module::` as a path of its own (not `x::module::`).
fn names_path(code: &str, module: &str) -> bool {
    let needle = format!("{module}::");
    code.match_indices(&needle).any(|(at, _)| {
        code[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !is_ident(c) && c != ':')
    })
}

/// Names re-exported by `lib.rs` (`pub use module::{A, B}`), by the module
/// they come from.
fn reexports(lib: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for stmt in lib.split(';') {
        let Some(body) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = body.split_once("::") else {
            continue;
        };
        if !modules.contains(module) {
            continue;
        }
        let items = items.trim().trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let name = item.split_whitespace().last().unwrap_or("");
            let name = name.rsplit("::").next().unwrap_or(name);
            if !name.is_empty() {
                map.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    map
}

/// A circle in `edges`, if there is one, as the modules round it.
fn find_circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(circle) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(circle);
        }
    }
    None
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file of `node/src` belongs to.
fn top_module(path: &Path) -> String {
    let rel = path.strip_prefix(src()).expect("a file under node/src");
    let first = rel.components().next().expect("a path");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

#[test]
fn top_level_modules_import_no_circle() {
    let files = rust_files(&src());
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| top_module(f))
        .filter(|m| m != "lib")
        .collect();
    let lib = code_of(&src().join("lib.rs"));
    let names = reexports(&lib, &modules);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = top_module(file);
        if from == "lib" {
            continue;
        }
        let entry = edges.entry(from.clone()).or_default();
        for seg in segments_after(&code_of(file), "crate::") {
            let to = if modules.contains(&seg) {
                Some(seg)
            } else {
                names.get(&seg).cloned()
            };
            if let Some(to) = to.filter(|to| *to != from) {
                entry.insert(to);
            }
        }
    }
    assert!(
        edges.get("node").is_some_and(|e| e.contains("net")),
        "the scan sees node.rs use net/: {edges:?}"
    );
    if let Some(circle) = find_circle(&edges) {
        panic!(
            "modules of node/src import each other: {}",
            circle.join(" -> ")
        );
    }
}

#[test]
fn children_of_each_directory_module_import_no_circle() {
    let mut checked = 0;
    for dir in fs::read_dir(src()).expect("reading node/src") {
        let dir = dir.expect("reading node/src").path();
        if !dir.is_dir() {
            continue;
        }
        let parent = dir
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .to_string();
        checked += 1;
        let files = rust_files(&dir);
        let child_of = |f: &Path| -> String {
            let rel = f.strip_prefix(&dir).expect("a file under the module");
            let first = rel.components().next().expect("a path");
            first
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned()
        };
        let children: BTreeSet<String> = files.iter().map(|f| child_of(f)).collect();
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in &files {
            let from = child_of(file);
            let code = code_of(file);
            let entry = edges.entry(from.clone()).or_default();
            if from == "mod" {
                // The parent reaches its children by their names.
                for child in &children {
                    if child != "mod" && names_path(&code, child) {
                        entry.insert(child.clone());
                    }
                }
                continue;
            }
            // A child reaches its siblings and its parent's own items
            // through `super::` or `crate::PARENT::`. Deeper in a child
            // directory, `super::` is the child itself.
            let rel = file.strip_prefix(&dir).expect("a file under the module");
            let in_child_dir = rel.components().count() > 1 && !rel.ends_with("mod.rs");
            let mut items = if in_child_dir {
                Vec::new()
            } else {
                segments_after(&code, "super::")
            };
            items.extend(segments_after(&code, &format!("crate::{parent}::")));
            for item in items {
                if item == from {
                    continue;
                }
                entry.insert(if children.contains(&item) {
                    item
                } else {
                    "mod".to_owned()
                });
            }
        }
        if let Some(circle) = find_circle(&edges) {
            panic!(
                "modules of node/src/{parent} import each other: {}",
                circle.join(" -> ")
            );
        }
    }
    assert!(
        checked >= 6,
        "net/, trust/, peers/, names/, api/ and control/ are looked at"
    );
}
