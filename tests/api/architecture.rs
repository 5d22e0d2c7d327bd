//! The module map of `ARCHITECTURE.md`, enforced: reads every `src/` file's paths into the crate
//! (`crate::…` and `super::…`), and checks that every import points down a layer (or stays in
//! its own) and that no two modules import each other, directly or around a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules, lowest layer first. A module may import from its own layer or below.
const LAYERS: &[&[&str]] = &[
    &["domain"],
    &["config", "logging"],
    &["store"],
    &["dto", "delivery"],
    &["http"],
    &["admin_token", "server", "receive", "cli"],
];

fn layer_of(module: &str) -> usize {
    let top = module.split("::").next().unwrap_or(module);
    LAYERS
        .iter()
        .position(|layer| layer.contains(&top))
        .unwrap_or_else(|| panic!("module `{top}` is in no layer of tests/api/architecture.rs"))
}

/// `src/store/leads.rs` → `store::leads`, `src/http/leads/mod.rs` → `http::leads`.
fn module_name(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its `#[cfg(test)] mod tests` and without comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a `use` tree starting at `text` names: `a::b` → [a::b]; `a::{b, c::{d}}` →
/// [a::b, a::c::d]; a path inside code ends at the first character that is not part of one.
fn paths(text: &str) -> Vec<String> {
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let head_len = text.find(|c: char| !ident(c)).unwrap_or(text.len());
    let head = text[..head_len].trim_end_matches(':');
    let rest = &text[head_len..];
    if !rest.starts_with('{') {
        return vec![head.to_string()];
    }
    // The group's items, split at the commas of its own level.
    let (mut depth, mut items, mut start) = (0, Vec::new(), 1);
    for (i, c) in rest.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    items.push(&rest[start..i]);
                    break;
                }
            }
            ',' if depth == 1 => {
                items.push(&rest[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
        .into_iter()
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .flat_map(paths)
        .map(|tail| match (head.is_empty(), tail.as_str()) {
            (true, _) => tail,
            (false, "self") => head.to_string(),
            (false, _) => format!("{head}::{tail}"),
        })
        .collect()
}

/// Every module path mentioned after `crate::` or `super::`, resolved to the longest known
/// module it names.
fn imports(
    module: &str,
    is_mod_rs: bool,
    code: &str,
    known: &BTreeSet<String>,
) -> BTreeSet<String> {
    let parent: Vec<&str> = {
        let mut parts: Vec<&str> = module.split("::").collect();
        if !is_mod_rs {
            parts.pop();
        }
        parts
    };
    let mut found = BTreeSet::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent.clone())] {
        for (at, _) in code.match_indices(prefix) {
            let preceded_by_ident = code[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            if preceded_by_ident {
                continue;
            }
            for path in paths(&code[at + prefix.len()..]) {
                let mut candidate: Vec<&str> = base.clone();
                let mut best = None;
                for part in path.split("::").filter(|s| !s.is_empty()) {
                    candidate.push(part);
                    let name = candidate.join("::");
                    if known.contains(&name) {
                        best = Some(name);
                    }
                }
                if let Some(target) = best.filter(|t| t != module) {
                    found.insert(target);
                }
            }
        }
    }
    found
}

/// The crate's import graph: module → modules it names (a parent's own children left out:
/// declaring and re-exporting them is what a parent is for).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: Vec<(String, bool, PathBuf)> = files
        .into_iter()
        .filter(|f| !f.ends_with("lib.rs") && !f.ends_with("main.rs"))
        .map(|f| (module_name(&src, &f), f.ends_with("mod.rs"), f))
        .collect();
    let known: BTreeSet<String> = modules.iter().map(|(m, ..)| m.clone()).collect();
    modules
        .iter()
        .map(|(module, is_mod_rs, file)| {
            let text = std::fs::read_to_string(file).expect("read");
            let mut targets = imports(module, *is_mod_rs, &code(&text), &known);
            targets.retain(|t| !t.starts_with(&format!("{module}::")));
            (module.clone(), targets)
        })
        .collect()
}

#[test]
fn every_import_points_down_a_layer_or_stays_in_its_own() {
    let mut upward = Vec::new();
    for (module, targets) in graph() {
        for target in targets {
            if layer_of(&target) > layer_of(&module) {
                upward.push(format!("{module} -> {target}"));
            }
        }
    }
    assert!(upward.is_empty(), "imports that point up: {upward:#?}");
}

#[test]
fn no_modules_import_each_other_even_around_a_circle() {
    let graph = graph();
    // Depth-first search; a module met again while still on the path closes a circle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        circles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == node) {
            circles.push(format!("{} -> {node}", path[at..].join(" -> ")));
            return;
        }
        if !done.insert(node.to_string()) {
            return;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done, circles);
        }
        path.pop();
    }
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

#[test]
fn the_checker_sees_imports_through_crate_and_super_paths() {
    let known: BTreeSet<String> = [
        "store",
        "store::leads",
        "store::catalog",
        "domain::lead",
        "http::x",
    ]
    .map(String::from)
    .into();
    let code = "use super::catalog::{Catalog, load};\nuse crate::domain::lead::{self, Lead};";
    assert_eq!(
        imports("store::leads", false, code, &known),
        ["domain::lead", "store::catalog"].map(String::from).into()
    );
    let grouped = "use crate::{domain::{lead::Lead}, store::catalog};";
    assert_eq!(
        imports("http::x", false, grouped, &known),
        ["domain::lead", "store::catalog"].map(String::from).into()
    );
    // The real crate has edges, so the two rules above are checking something.
    assert!(graph()["store::leads"].contains("store::catalog"));
}
