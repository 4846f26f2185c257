//! The docs cannot drift from the tree or the parser: every relative link
//! in the README, ARCHITECTURE.md, BENCHMARKS.md and docs/ resolves (the
//! file, and the heading when the link names one), and every complete
//! suite example in them (a TOML block with `[[check]]` or `[[drill]]`)
//! passes `vpc-probe validate`.

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The Markdown pages a reader follows links through.
fn pages() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut pages: Vec<PathBuf> = ["README.md", "ARCHITECTURE.md", "BENCHMARKS.md"]
        .iter()
        .map(|p| root.join(p))
        .collect();
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages.sort();
    pages
}

/// The page's text outside fenced code blocks, where links are links.
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut kept = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

/// Every `](target)` of a Markdown text.
fn link_targets(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(t, _)| t.trim().to_string()))
        .collect()
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings.
fn anchors(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    prose(&text)
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

/// What is wrong with one link of `page`, if anything.
fn broken(page: &Path, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
    let resolved = if file.is_empty() {
        page.to_path_buf()
    } else {
        page.parent().unwrap().join(file)
    };
    if !resolved.exists() {
        return Some(format!("{target}: no such file"));
    }
    let markdown = resolved.extension().is_some_and(|e| e == "md");
    if !anchor.is_empty() && markdown && !anchors(&resolved).contains(&anchor.to_string()) {
        return Some(format!("{target}: no such heading"));
    }
    None
}

#[test]
fn every_relative_link_resolves() {
    let mut problems = Vec::new();
    let mut seen = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for target in link_targets(&prose(&text)) {
            seen += 1;
            if let Some(problem) = broken(&page, &target) {
                problems.push(format!("{}: {problem}", page.display()));
            }
        }
    }
    assert!(seen > 30, "only {seen} links found: the scan is broken");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every fenced TOML block of the pages that is a whole suite.
fn suite_examples() -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for block in text.split("```toml\n").skip(1) {
            let body = block.split("```").next().unwrap_or_default();
            if body.contains("[[check]]") || body.contains("[[drill]]") {
                found.push((page.clone(), body.to_string()));
            }
        }
    }
    found
}

#[test]
fn every_suite_example_validates() {
    let examples = suite_examples();
    assert!(examples.len() >= 4, "{} examples found", examples.len());
    let dir = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    for (n, (page, body)) in examples.iter().enumerate() {
        let file = dir.path().join(format!("example-{n}.toml"));
        std::fs::write(&file, body).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_vpc-probe"))
            .args(["validate", "--suite"])
            .arg(&file)
            .env_remove("VPC_PROBE_SUITE")
            .output()
            .unwrap();
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr).into_owned();
            problems.push(format!("{} (example {n}): {why}", page.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[cfg(test)]
mod scan {
    use super::*;

    #[test]
    fn slug_follows_github() {
        assert_eq!(slug(" Three ways to run it"), "three-ways-to-run-it");
        assert_eq!(slug(" `serve`, metrics"), "serve-metrics");
    }

    #[test]
    fn a_missing_file_and_heading_are_named() {
        let page = Path::new(ROOT).join("README.md");
        assert!(broken(&page, "docs/nothing-here.md").is_some());
        assert!(broken(&page, "docs/reasons.md#no-such-heading").is_some());
        assert!(broken(&page, "docs/reasons.md").is_none());
        assert!(broken(&page, "#usage").is_none());
    }
}
