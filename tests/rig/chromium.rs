//! Headless Chromium (Debian's package) for pages a person looks at.

use std::path::Path;
use std::process::Command;

/// Render `html` to a PNG at `png`; an error says why it could not.
pub fn screenshot(html: &Path, png: &Path) -> Result<(), String> {
    let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
    let output = chromium(&profile)
        .args(["--hide-scrollbars", "--window-size=1100,1500"])
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

/// What sticks out of the page at `width` CSS pixels: the page's scroll
/// width beyond the viewport, and each element whose box ends past the
/// viewport's right edge (none when the page wraps or scrolls inside its
/// boxes). Measured by Chromium's own layout, on a copy of the page with a
/// measuring script added.
pub fn overflow(html: &Path, width: u32) -> Result<Vec<String>, String> {
    let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
    let page = std::fs::read_to_string(html).map_err(|e| e.to_string())?;
    let measured = profile.path().join("measured.html");
    std::fs::write(
        &measured,
        page.replace("</body>", &format!("{MEASURE}</body>")),
    )
    .map_err(|e| e.to_string())?;
    let output = chromium(&profile)
        .arg(format!("--window-size={width},900"))
        .arg("--dump-dom")
        .arg(format!("file://{}", measured.display()))
        .output()
        .map_err(|err| format!("chromium: {err}"))?;
    let dom = String::from_utf8_lossy(&output.stdout);
    let Some(found) = dom.split("<div id=\"overflow\">").nth(1) else {
        return Err(format!(
            "the measuring script did not run: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    };
    let found = found.split("</div>").next().unwrap_or_default();
    Ok(found
        .split(';')
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect())
}

/// Lists the page's horizontal overflow into `div#overflow`.
const MEASURE: &str = r#"<script>
(() => {
  const viewport = document.documentElement.clientWidth;
  const found = [];
  if (document.documentElement.scrollWidth > viewport) {
    found.push(`page ${document.documentElement.scrollWidth}px wide in ${viewport}px`);
  }
  for (const element of document.body.querySelectorAll('*')) {
    const right = element.getBoundingClientRect().right;
    const scroller = element.parentElement && element.parentElement.closest('table');
    if (right > viewport + 1 && !scroller) {
      found.push(`${element.tagName.toLowerCase()} ends at ${Math.round(right)}px`);
    }
  }
  const out = document.createElement('div');
  out.id = 'overflow';
  out.textContent = found.join(';');
  document.body.appendChild(out);
})();
</script>"#;

/// Headless Chromium with a fresh profile, touching no network.
fn chromium(profile: &tempfile::TempDir) -> Command {
    let mut command = Command::new("chromium");
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()));
    command
}
