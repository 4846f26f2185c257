//! The gate as one self-contained page (no network fetches): the check ×
//! subnet matrix coloured by result, each failure's detail and hint, each
//! task without a report with ECS's words, and the fleet diagnosis.

use super::report::{GateReport, SubnetResult};
use super::verdict::cell;
use std::fmt::Write;

/// Text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}\
    .pass{background:#e8f5e9;color:#1b5e20}.fail{background:#ffebee;color:#b71c1c}.none{background:#fff8e1;color:#8d6e00}\
    table{border-collapse:collapse;margin:12px 0;display:block;max-width:100%;overflow-x:auto}\
    td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
    p,li,pre{overflow-wrap:anywhere}pre{background:#f5f5f5;padding:8px;white-space:pre-wrap;max-width:100%;box-sizing:border-box}";

/// The whole page.
pub fn render(report: &GateReport) -> String {
    let verdict = if report.success { "PASS" } else { "FAIL" };
    let class = if report.success { "pass" } else { "fail" };
    let mut page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>gate {cluster}: {verdict}</title>\
         <style>{STYLE}</style></head><body><h1>gate on cluster {cluster}: <span class=\"{class}\">{verdict}</span></h1>\
         <p>{definition} &middot; {started_by} &middot; {seconds:.1} s</p>",
        cluster = escape(&report.cluster),
        definition = escape(&report.task_definition),
        started_by = escape(&report.started_by),
        seconds = report.duration_seconds,
    );
    page += &matrix(report);
    if !report.diagnosis.is_empty() {
        page += "<h2>diagnosis</h2><ul>";
        for diagnosis in &report.diagnosis {
            let _ = write!(page, "<li>{}</li>", escape(&diagnosis.says));
        }
        page += "</ul>";
    }
    for subnet in &report.subnets {
        page += &details(subnet);
    }
    page += "</body></html>\n";
    page
}

/// The check × subnet table, each cell pass, the reason, or no report.
fn matrix(report: &GateReport) -> String {
    let mut table = String::from("<table><tr><th>check</th>");
    for subnet in &report.subnets {
        let zone = subnet.availability_zone.as_deref().unwrap_or("");
        let _ = write!(
            table,
            "<th>{}<br>{}</th>",
            escape(&subnet.subnet),
            escape(zone)
        );
    }
    table += "</tr>";
    let checks: Vec<String> = match report.checks.is_empty() {
        true => vec!["(no report)".into()],
        false => report.checks.clone(),
    };
    for check in &checks {
        let _ = write!(table, "<tr><td>{}</td>", escape(check));
        for subnet in &report.subnets {
            let value = cell(subnet, check);
            let class = match value.as_str() {
                "pass" => "pass",
                "no report" | "-" => "none",
                _ => "fail",
            };
            let _ = write!(table, "<td class=\"{class}\">{}</td>", escape(&value));
        }
        table += "</tr>";
    }
    table + "</table>"
}

/// A subnet's failures, or why it gave no report.
fn details(subnet: &SubnetResult) -> String {
    let mut out = String::new();
    if let Some(missing) = &subnet.no_report {
        let _ = write!(
            out,
            "<h3>{}: no report ({})</h3><p>stopCode {} &middot; exit code {}</p><pre>{}</pre><p>hint: {}</p>",
            escape(&subnet.subnet),
            missing.why.as_str(),
            escape(missing.stop_code.as_deref().unwrap_or("none")),
            missing.exit_code.map_or("none".to_string(), |c| c.to_string()),
            escape(missing.stopped_reason.as_deref().unwrap_or("")),
            escape(&missing.hint)
        );
        return out;
    }
    let Some(report) = &subnet.report else {
        return out;
    };
    for check in report.checks.iter().filter(|c| !c.success) {
        let _ = write!(
            out,
            "<h3>{} in {}: {}</h3><pre>{}</pre><p>hint: {}</p>",
            escape(&check.name),
            escape(&subnet.subnet),
            check.reason.map_or("fail", |r| r.as_str()),
            escape(check.detail.as_deref().unwrap_or("")),
            escape(check.hint.as_deref().unwrap_or(""))
        );
        if let Some(evidence) = &check.evidence {
            let _ = write!(
                out,
                "<pre>{}</pre>",
                escape(&crate::report::text::evidence_lines(evidence))
            );
        }
    }
    out
}
