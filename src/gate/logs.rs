//! Each task's report, read back from its awslogs stream: awslogs makes
//! every line of stdout and of stderr one event, interleaved in one stream
//! (`PREFIX/CONTAINER/TASK-ID`), so the probe's own log lines sit among
//! them. The report is the one event that reads as a whole `RunReport`.

use crate::aws::client::{Account, Service};
use crate::report::document::RunReport;
use serde_json::json;

/// Pages read per stream at most: a one-shot check prints a few lines.
const MAX_PAGES: usize = 50;

/// What a task's stream held: its report, if any, and its last lines.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    pub report: Option<RunReport>,
    /// The last lines that are not the report (the probe's own log), for
    /// a task that gave no report.
    pub tail: Vec<String>,
}

/// The stream's name for a task, as awslogs makes it.
pub fn stream_name(prefix: &str, container: &str, task_id: &str) -> String {
    match prefix.is_empty() {
        true => format!("{container}/{task_id}"),
        false => format!("{prefix}/{container}/{task_id}"),
    }
}

/// Every event of the stream, all pages, oldest first; the report picked
/// from among them.
pub async fn read(account: &Account, group: &str, stream: &str) -> Result<Stream, String> {
    let mut lines = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut input =
            json!({"logGroupName": group, "logStreamName": stream, "startFromHead": true});
        if let Some(token) = &token {
            input["nextToken"] = json!(token);
        }
        let answer = account
            .json(Service::Logs, "GetLogEvents", &input)
            .await
            .map_err(|err| err.to_string())?;
        let events = answer["events"].as_array().cloned().unwrap_or_default();
        lines.extend(
            events
                .iter()
                .filter_map(|e| e["message"].as_str().map(str::to_string)),
        );
        let next = answer["nextForwardToken"].as_str().map(str::to_string);
        // The last page repeats the token it was asked with.
        if events.is_empty() || next.is_none() || next == token {
            break;
        }
        token = next;
    }
    Ok(pick(lines))
}

/// The report among a stream's lines (the last one that parses, should a
/// line repeat), and the other lines' tail.
pub fn pick(lines: Vec<String>) -> Stream {
    let mut stream = Stream::default();
    for line in lines {
        let parsed = line
            .trim_start()
            .starts_with('{')
            .then(|| serde_json::from_str::<RunReport>(line.trim()).ok())
            .flatten();
        match parsed {
            Some(report) => stream.report = Some(report),
            None => stream.tail.push(line),
        }
    }
    let keep = stream.tail.len().saturating_sub(10);
    stream.tail.drain(..keep);
    stream
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_is_found_among_the_probes_own_lines() {
        let report = r#"{"suite":"s","task":null,"success":true,"started":"2026-12-05T00:00:00.000Z","duration_seconds":0.1,"checks":[]}"#;
        let lines = vec![
            r#"{"timestamp":"…","level":"INFO","fields":{"message":"checking"}}"#.to_string(),
            "2026-12-05T00:00:00Z  WARN vpc_probe: something".to_string(),
            report.to_string(),
            "2026-12-05T00:00:01Z  INFO vpc_probe: done".to_string(),
        ];
        let stream = pick(lines);
        assert_eq!(stream.report.map(|r| r.suite), Some("s".to_string()));
        assert_eq!(stream.tail.len(), 3);
    }

    #[test]
    fn stream_names_follow_awslogs() {
        assert_eq!(
            stream_name("vpc-probe", "vpc-probe", "abc"),
            "vpc-probe/vpc-probe/abc"
        );
        assert_eq!(stream_name("", "probe", "abc"), "probe/abc");
    }
}
