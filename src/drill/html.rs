//! The drill as one self-contained page (no network fetches): the
//! timeline drawn as an SVG (writes and reads over time, the trigger and
//! the change marked, the write gap shaded) and the figures beside it.

use super::report::{DrillReport, WriteFate};
use std::fmt::Write;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 110.0;
const RIGHT: f64 = 20.0;

/// Text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const GREEN: &str = "#2e7d32";
const PURPLE: &str = "#6a1b9a";
const AMBER: &str = "#f9a825";
const RED: &str = "#c62828";

/// A write's colour on the timeline.
fn write_colour(fate: WriteFate) -> &'static str {
    match fate {
        WriteFate::Ok => GREEN,
        WriteFate::Misrouted => PURPLE,
        WriteFate::Uncertain => AMBER,
        WriteFate::Failed => RED,
    }
}

/// A read's colour: a replica answered, a primary did (misrouted), or
/// the read failed (its reason).
fn read_colour(answer: &str) -> &'static str {
    use super::target::ReadFrom;
    match answer {
        _ if answer == ReadFrom::Replica.as_str() => GREEN,
        _ if answer == ReadFrom::Primary.as_str() => PURPLE,
        _ => RED,
    }
}

/// One attempt's mark on a lane of the timeline, its title on hover.
fn tick(x: f64, y: u32, colour: &str, title: &str) -> String {
    format!(
        "<rect x=\"{x:.1}\" y=\"{y}\" width=\"2\" height=\"28\" fill=\"{colour}\"><title>{}</title></rect>",
        escape(title)
    )
}

/// The whole page.
pub fn render(report: &DrillReport) -> String {
    let verdict = if report.success { "PASS" } else { "FAIL" };
    let mut page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>drill {name}: {verdict}</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}h1{{font-size:20px}}\
         .pass{{color:#2e7d32}}.fail{{color:#c62828}}table{{border-collapse:collapse;margin:12px 0}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
         table{{display:block;max-width:100%;overflow-x:auto}}svg{{max-width:100%;height:auto}}\
         pre{{background:#f5f5f5;padding:8px;white-space:pre-wrap;overflow-wrap:anywhere;max-width:100%;box-sizing:border-box}}</style>\
         </head><body><h1>drill {name} ({kind}): <span class=\"{class}\">{verdict}</span></h1>",
        name = escape(&report.drill),
        kind = escape(&report.kind),
        class = verdict.to_lowercase(),
    );
    if report.interrupted {
        page += "<p class=\"fail\">interrupted (SIGTERM): what was measured until then</p>";
    }
    if let Some(error) = &report.error {
        let _ = write!(
            page,
            "<p>could not run: {}</p></body></html>",
            escape(error)
        );
        return page;
    }
    page += &svg(report);
    page += &figures(report);
    let _ = write!(
        page,
        "<h2>summary</h2><pre>{}</pre></body></html>",
        escape(&report.text())
    );
    page
}

/// The timeline: a lane of write attempts, a lane of reads, marks and the gap.
fn svg(report: &DrillReport) -> String {
    let end = report.duration_seconds.max(1.0);
    let x = |seconds: f64| LEFT + (WIDTH - LEFT - RIGHT) * seconds / end;
    let height = 200.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"timeline\">"
    );
    if let Some(gap) = report.write_gap {
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"20\" width=\"{:.1}\" height=\"130\" fill=\"#ffcdd2\" opacity=\"0.6\"><title>write gap {:.2} s</title></rect>",
            x(gap.from_seconds),
            (x(gap.to_seconds) - x(gap.from_seconds)).max(1.0),
            report.write_gap_seconds
        );
    }
    let _ = write!(svg, "<text x=\"8\" y=\"62\">writes</text>");
    if report.read_only.is_some() {
        let _ = write!(svg, "<text x=\"8\" y=\"122\">reads (ro)</text>");
    }
    for attempt in &report.attempts {
        let title = format!(
            "#{} {} {}",
            attempt.seq,
            attempt.fate.as_str(),
            attempt.detail
        );
        let colour = write_colour(attempt.fate);
        svg += &tick(x(attempt.at_seconds), 45, colour, &title);
    }
    for read in &report.reads {
        let colour = read_colour(&read.answer);
        svg += &tick(x(read.at_seconds), 105, colour, &read.answer);
    }
    for event in &report.timeline {
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"20\" y2=\"150\" stroke=\"#1565c0\" stroke-dasharray=\"3,3\"><title>{1:.2} s: {2}</title></line>",
            x(event.at_seconds),
            event.at_seconds,
            escape(&event.event)
        );
    }
    let step = (end / 10.0).ceil().max(1.0);
    let mut tick = 0.0;
    while tick <= end {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"175\" font-size=\"11\">{tick}s</text>",
            x(tick)
        );
        tick += step;
    }
    svg += "</svg><p>green: acknowledged / replica answered; red: failed; amber: uncertain; purple: misrouted write or a primary on the read-only port; shaded: the longest time without an acknowledged write; dashed: events.</p>";
    svg
}

fn figures(report: &DrillReport) -> String {
    let mut html = String::from(
        "<h2>budgets</h2><table><tr><th>budget</th><th>limit</th><th>value</th><th></th></tr>",
    );
    for budget in &report.budgets {
        let (class, mark) = if budget.pass {
            ("pass", "ok")
        } else {
            ("fail", "FAIL")
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{mark}</td></tr>",
            escape(&budget.name),
            escape(&budget.limit),
            escape(&budget.value)
        );
    }
    html += "</table><h2>timeline</h2><table><tr><th>at</th><th>event</th></tr>";
    for event in &report.timeline {
        let _ = write!(
            html,
            "<tr><td>{:.2} s</td><td>{}</td></tr>",
            event.at_seconds,
            escape(&event.event)
        );
    }
    html + "</table>"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_servers_is_escaped() {
        assert_eq!(
            escape("<b>\"x\" & y</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;"
        );
    }
}
