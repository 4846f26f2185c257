//! Headless Chromium (Debian's package) for pages a person looks at.

use std::path::Path;
use std::process::Command;

/// Render `html` to a PNG at `png`; an error says why it could not.
pub fn screenshot(html: &Path, png: &Path) -> Result<(), String> {
    let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1100,1500",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .map_err(|err| format!("chromium: {err}"))?;
    let size = std::fs::metadata(png).map(|m| m.len()).unwrap_or(0);
    if size < 10_000 {
        return Err(format!(
            "no screenshot ({size} bytes): {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}
