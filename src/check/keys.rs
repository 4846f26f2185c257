//! What every kind's suite keys share: the [`Problem`] a key's value can
//! have, and the rules several kinds apply alike (URL host and port,
//! scheme, one source for a password, TLS settings). Each kind declares
//! its own keys, once, as a `Keys` struct in its file.

use crate::expand::Env;
use crate::net::tls::{self, TlsSetup, Verify};
use crate::net::url_parts::{bare_host, percent_decode};
use crate::secret::{Scrubber, Secret};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use url::Url;

/// A validation problem found after parsing, naming the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: Option<String>,
    pub message: String,
}

impl Problem {
    /// A problem with one key's value.
    pub fn at(key: &str, message: impl Into<String>) -> Self {
        Problem {
            key: Some(key.to_string()),
            message: message.into(),
        }
    }

    /// A problem with the check as a whole.
    pub fn check(message: impl Into<String>) -> Self {
        Problem {
            key: None,
            message: message.into(),
        }
    }
}

/// Host and port of a URL, the port defaulting per scheme.
pub fn host_and_port(url: &Url, default_port: u16) -> Result<(String, u16), Problem> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Problem::at("url", "has no host"))?;
    let port = url.port().unwrap_or(default_port);
    if port == 0 {
        return Err(Problem::at("url", "port must not be zero"));
    }
    Ok((bare_host(host).to_string(), port))
}

/// The URL's scheme, which must be one of `allowed`.
pub fn scheme<'a>(url: &Url, allowed: &[&'a str]) -> Result<&'a str, Problem> {
    allowed
        .iter()
        .find(|s| **s == url.scheme())
        .copied()
        .ok_or_else(|| {
            Problem::at(
                "url",
                format!("scheme must be one of {}", allowed.join(", ")),
            )
        })
}

/// The password from exactly one of: the URL, `password`, `password_file`;
/// registered with the scrubber before anything can print it.
pub fn password(
    url: &Url,
    raw_password: Option<Secret>,
    file: Option<Env<PathBuf>>,
    scrubber: &mut Scrubber,
) -> Result<Option<Secret>, Problem> {
    let in_url = match url.password() {
        Some(pw) => Some(Secret::checked(percent_decode(pw)).map_err(|m| Problem::at("url", m))?),
        None => None,
    };
    let from_file = match file {
        Some(Env(path)) => Some(read_secret(&path)?),
        None => None,
    };
    let sources = [in_url, raw_password, from_file];
    if sources.iter().flatten().count() > 1 {
        return Err(Problem::at(
            "password",
            "give the password once: in the URL, `password` or `password_file`",
        ));
    }
    let password = sources.into_iter().flatten().next();
    if let Some(secret) = &password {
        scrubber.add(secret);
    }
    Ok(password)
}

fn read_secret(path: &Path) -> Result<Secret, Problem> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        Problem::at(
            "password_file",
            format!("cannot read {}: {err}", path.display()),
        )
    })?;
    let value = text.trim_end_matches(['\r', '\n']);
    if value.is_empty() {
        return Err(Problem::at(
            "password_file",
            format!("{} is empty", path.display()),
        ));
    }
    Secret::checked(value)
        .map_err(|message| Problem::at("password_file", format!("{}: {message}", path.display())))
}

/// A rustls client configuration from the `ca_file` and skip-verify keys.
pub fn tls_config(
    verify: Verify,
    ca_file: Option<&Env<PathBuf>>,
) -> Result<Arc<rustls::ClientConfig>, Problem> {
    tls::client_config(verify, ca_file.map(|Env(p)| p.as_path()))
        .map_err(|msg| Problem::at("ca_file", msg))
}

/// The TLS set-up of a check whose scheme asks for TLS (`tls`); without
/// it, the TLS-only keys are refused rather than silently ignored.
pub fn tls_setup(
    tls: bool,
    verify: Verify,
    ca_file: Option<&Env<PathBuf>>,
    server_name: Option<Env<String>>,
) -> Result<Option<TlsSetup>, Problem> {
    if !tls {
        if server_name.is_some() {
            return Err(Problem::at(
                "tls_server_name",
                "applies only to TLS (rediss://, https://, sslmode other than disable)",
            ));
        }
        return Ok(None);
    }
    let server_name = server_name.map(|Env(name)| name);
    if let Some(name) = &server_name {
        tls::server_name(name).map_err(|fault| Problem::at("tls_server_name", fault.detail))?;
    }
    Ok(Some(TlsSetup {
        config: tls_config(verify, ca_file)?,
        server_name,
    }))
}

/// `tls_skip_verify = true` encrypts without checking the certificate.
pub fn verify(skip: bool) -> Verify {
    if skip {
        Verify::Nothing
    } else {
        Verify::Full
    }
}

/// The strings of an optional list key.
pub fn strings(list: Option<Vec<Env<String>>>) -> Vec<String> {
    unwrap_all(list)
}

/// The values of an optional list of expanded values.
pub fn unwrap_all<T>(list: Option<Vec<Env<T>>>) -> Vec<T> {
    list.unwrap_or_default()
        .into_iter()
        .map(|Env(v)| v)
        .collect()
}

/// A size such as `"4MiB"` or `"512 KiB"`, at most `max` bytes.
pub fn byte_size(value: Option<Env<String>>, key: &str, max: u64) -> Result<Option<u64>, Problem> {
    let Some(Env(text)) = value else {
        return Ok(None);
    };
    let size: bytesize::ByteSize = text
        .trim()
        .parse()
        .map_err(|_| Problem::at(key, format!("not a size: {text:?} (e.g. \"4MiB\")")))?;
    match size.as_u64() {
        0 => Err(Problem::at(key, "must be more than 0 bytes")),
        bytes if bytes > max => Err(Problem::at(
            key,
            format!("at most {}", bytesize::ByteSize(max).display().iec()),
        )),
        bytes => Ok(Some(bytes)),
    }
}

/// Sessions to open at once: 1 to `max`.
pub fn concurrency(value: Option<u32>, max: u32) -> Result<Option<u32>, Problem> {
    match value {
        Some(n) if n == 0 || n > max => Err(Problem::at(
            "concurrency",
            format!("must be between 1 and {max}"),
        )),
        other => Ok(other),
    }
}
