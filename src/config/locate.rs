//! Where in a suite file something is: byte offsets to `file:line:column`,
//! and a key's line found inside a check's span, so every error names the
//! file, the line and the key without echoing the value.

use super::ConfigError;
use crate::check::keys::Problem;
use std::ops::Range;

/// Turns byte offsets into `file:line:column` and finds keys by line.
pub(super) struct Locator<'a> {
    pub source: &'a str,
    pub file: &'a str,
}

impl Locator<'_> {
    pub(super) fn line(&self, offset: usize) -> usize {
        self.line_column(offset).0
    }

    fn line_column(&self, offset: usize) -> (usize, usize) {
        let before = &self.source[..offset.min(self.source.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    pub(super) fn error(
        &self,
        span: Option<Range<usize>>,
        key: Option<&str>,
        message: String,
    ) -> ConfigError {
        let (line, column) = match span {
            Some(span) => {
                let (line, column) = self.line_column(span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        ConfigError {
            file: self.file.to_string(),
            line,
            column,
            key: key.map(str::to_string),
            message,
        }
    }

    /// The parser's own error, with the key read off the line it points at;
    /// its message is kept, its snippet (which may show a secret) dropped.
    pub(super) fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let key = err.span().and_then(|span| self.key_on_line(span.start));
        self.error(err.span(), key.as_deref(), err.message().trim().to_string())
    }

    /// An error about `key` inside `within` (a check's span), or the suite.
    pub(super) fn key_error(
        &self,
        within: Option<&Range<usize>>,
        key: &str,
        message: String,
    ) -> ConfigError {
        let region = within.cloned().unwrap_or(0..self.source.len());
        let span = self.find_key(&region, key).or(within.cloned());
        self.error(span, Some(key), message)
    }

    pub(super) fn problem(&self, check: &Range<usize>, problem: Problem) -> ConfigError {
        match problem.key {
            Some(key) => self.key_error(Some(check), &key, problem.message),
            None => self.error(Some(check.clone()), None, problem.message),
        }
    }

    /// The span of the line that assigns `key` inside `region`.
    pub(super) fn find_key(&self, region: &Range<usize>, key: &str) -> Option<Range<usize>> {
        let text = self.source.get(region.clone())?;
        let mut offset = region.start;
        for line in text.split_inclusive('\n') {
            let trimmed = line.trim_start();
            if assigned_key(trimmed) == Some(key) {
                let start = offset + (line.len() - trimmed.len());
                return Some(start..start + key.len());
            }
            offset += line.len();
        }
        None
    }

    fn key_on_line(&self, offset: usize) -> Option<String> {
        let start = self.source[..offset.min(self.source.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let line = self.source[start..].lines().next()?;
        assigned_key(line.trim_start()).map(str::to_string)
    }
}

/// The bare key a `key = value` line assigns.
fn assigned_key(line: &str) -> Option<&str> {
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(line.len());
    let (key, rest) = line.split_at(end);
    (!key.is_empty() && rest.trim_start().starts_with('=')).then_some(key)
}
