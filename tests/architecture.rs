//! ARCHITECTURE.md kept true: its import table says which modules each
//! top-level module may use; this test reads every `crate::` path in src
//! (outside comments and test modules) and fails when the code and the
//! table disagree, either way. It also holds every source file to 450
//! lines and every function outside tests to 80.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The table: module -> the modules it imports, from the fenced block
/// after "Import table" in ARCHITECTURE.md. `app -> everything above`
/// comes back as `None`.
fn documented() -> BTreeMap<String, Option<BTreeSet<String>>> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let after = text
        .split("Import table")
        .nth(1)
        .expect("ARCHITECTURE.md has an import table");
    let block = after
        .split("```")
        .nth(1)
        .expect("the table is a fenced block");
    block
        .lines()
        .filter_map(|line| line.split_once("->"))
        .map(|(module, uses)| {
            let uses = uses.trim();
            let set = match uses {
                "everything above" => None,
                "(nothing)" => Some(BTreeSet::new()),
                _ => Some(uses.split_whitespace().map(str::to_string).collect()),
            };
            (module.trim().to_string(), set)
        })
        .collect()
}

/// Every .rs file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found
}

/// The top-level module a file belongs to (`src/check/postgres/mod.rs` is
/// `check`); `None` for lib.rs and main.rs.
fn module_of(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(Path::new(ROOT).join("src")).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// The code of a file without comments and without its test modules.
fn code(text: &str) -> String {
    let mut kept = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let test_module = trimmed == "#[cfg(test)]"
            && lines.peek().is_some_and(|next| {
                next.trim_start().starts_with("mod ")
                    || next.trim_start().starts_with("pub(crate) mod ")
            });
        if test_module {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        kept.push(line.split(" // ").next().unwrap_or(line));
    }
    kept.join("\n")
}

/// The modules `code` names as `crate::<module>`.
fn imported(code: &str) -> BTreeSet<String> {
    code.match_indices("crate::")
        .filter(|(at, _)| !code[..*at].ends_with("$"))
        .filter_map(|(at, _)| {
            let rest = &code[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// What the code imports, per top-level module (its own name left out).
fn actual() -> BTreeMap<String, BTreeSet<String>> {
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let files = sources(&Path::new(ROOT).join("src"));
    let tests = test_files(&files);
    for path in files.into_iter().filter(|f| !tests.contains(f)) {
        let Some(module) = module_of(&path) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let mut uses = imported(&code(&text));
        uses.remove(&module);
        found.entry(module).or_default().extend(uses);
    }
    found
}

#[test]
fn the_import_table_in_architecture_md_is_what_the_code_imports() {
    let table = documented();
    let code = actual();
    let mut wrong = Vec::new();
    for (module, uses) in &code {
        match table.get(module) {
            None => wrong.push(format!("{module}: not in the table")),
            Some(None) => {}
            Some(Some(listed)) if listed != uses => wrong.push(format!(
                "{module}: the code imports {uses:?}, the table lists {listed:?}"
            )),
            Some(Some(_)) => {}
        }
    }
    for module in table.keys() {
        if !code.contains_key(module) {
            wrong.push(format!("{module}: in the table, but no such module in src"));
        }
    }
    assert!(
        wrong.is_empty(),
        "ARCHITECTURE.md's import table:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn dependencies_run_one_way() {
    // The table's order is the layering: a module imports only modules
    // listed above it, so there are no cycles.
    let text = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let block = text
        .split("Import table")
        .nth(1)
        .unwrap()
        .split("```")
        .nth(1)
        .unwrap();
    let order: Vec<String> = block
        .lines()
        .filter_map(|line| line.split_once("->"))
        .map(|(module, _)| module.trim().to_string())
        .collect();
    let code = actual();
    for (position, module) in order.iter().enumerate() {
        for used in code.get(module).into_iter().flatten() {
            let above = order[..position].contains(used);
            assert!(
                above,
                "{module} imports {used}, which is not listed above it"
            );
        }
    }
}

/// The code map's first column: every module named in backticks.
fn mapped() -> BTreeSet<String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let map = text
        .split("## Code map")
        .nth(1)
        .and_then(|after| after.split("Import table").next())
        .expect("ARCHITECTURE.md has a code map");
    map.lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|line| line.split(" |").next())
        .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_string))
        .map(|name| name.trim_end_matches(".rs").to_string())
        .collect()
}

#[test]
fn every_module_has_a_row_in_the_code_map() {
    let modules: BTreeSet<String> = sources(&Path::new(ROOT).join("src"))
        .iter()
        .filter_map(|path| module_of(path))
        .collect();
    let mapped = mapped();
    let missing: Vec<_> = modules.difference(&mapped).collect();
    assert!(missing.is_empty(), "no code-map row for {missing:?}");
}

/// The most lines a source file may have, and a function outside tests.
const FILE_LIMIT: usize = 450;
const FUNCTION_LIMIT: usize = 80;

/// The files that are test modules: `#[cfg(test)] mod name;` in a parent.
fn test_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut tests = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let dir = match file.file_name().and_then(|n| n.to_str()) {
            Some("mod.rs" | "lib.rs" | "main.rs") => file.parent().unwrap().to_path_buf(),
            _ => file.with_extension(""),
        };
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.windows(2) {
            let declared = pair[1].trim().strip_prefix("mod ");
            let name = declared.and_then(|rest| rest.strip_suffix(';'));
            if let (true, Some(name)) = (pair[0].trim() == "#[cfg(test)]", name) {
                tests.insert(dir.join(format!("{name}.rs")));
                tests.insert(dir.join(name).join("mod.rs"));
            }
        }
    }
    tests
}

/// The lines before a file's inline `#[cfg(test)] mod name {`.
fn outside_tests(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|pair| {
            pair[0].trim() == "#[cfg(test)]"
                && pair[1].trim().starts_with("mod ")
                && pair[1].trim_end().ends_with('{')
        })
        .unwrap_or(lines.len());
    lines[..end].to_vec()
}

/// `name: lines` of each function in `lines` longer than the limit: a
/// function runs from its `fn` line to the first `}` at its indentation.
fn long_functions(lines: &[&str]) -> Vec<String> {
    let mut long = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(at) = trimmed.find("fn ") else {
            continue;
        };
        let qualifiers = &trimmed[..at];
        let is_item = qualifiers
            .split_whitespace()
            .all(|q| q.starts_with("pub") || ["async", "const", "unsafe"].contains(&q));
        if !is_item || trimmed.ends_with(';') || trimmed.starts_with("//") {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let closing =
            |l: &&str| l.len() - l.trim_start().len() == indent && l.trim_start().starts_with('}');
        let Some(end) = lines[start..].iter().position(closing) else {
            continue;
        };
        if end + 1 > FUNCTION_LIMIT {
            let name: String = trimmed[at + 3..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            long.push(format!("{name}: {} lines", end + 1));
        }
    }
    long
}

#[test]
fn no_file_over_450_lines_and_no_function_over_80() {
    let files = sources(&Path::new(ROOT).join("src"));
    let tests = test_files(&files);
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let shown = file
            .strip_prefix(ROOT)
            .unwrap_or(file)
            .display()
            .to_string();
        let count = text.lines().count();
        if count > FILE_LIMIT {
            problems.push(format!("{shown}: {count} lines"));
        }
        if !tests.contains(file) {
            for long in long_functions(&outside_tests(&text)) {
                problems.push(format!("{shown}: fn {long}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_long_function_is_found_and_a_test_module_is_not_counted() {
    let body = "    let x = 1;\n".repeat(FUNCTION_LIMIT);
    let text = format!("pub(crate) async fn long() {{\n{body}}}\n\nfn short() {{\n}}\n");
    assert_eq!(long_functions(&outside_tests(&text)), ["long: 82 lines"]);
    let inline = format!("fn short() {{}}\n#[cfg(test)]\nmod tests {{\n{text}}}\n");
    assert!(long_functions(&outside_tests(&inline)).is_empty());
    let files = sources(&Path::new(ROOT).join("src"));
    let tests = test_files(&files);
    assert!(tests.contains(&Path::new(ROOT).join("src/config/tests.rs")));
    assert!(!tests.contains(&Path::new(ROOT).join("src/config/check.rs")));
}
