//! Credentials from the shared files (`~/.aws/config` and
//! `~/.aws/credentials`, or `AWS_CONFIG_FILE` and
//! `AWS_SHARED_CREDENTIALS_FILE`), profile `AWS_PROFILE` or `default`:
//! static keys, or a `role_arn` assumed from a `source_profile` or a
//! `credential_source`, hop by hop. SSO, `credential_process` and
//! `web_identity_token_file` profiles are named as not read, never skipped.

use super::{env, remote, sts, var, Credentials, Found};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A profile's keys, by name.
type Profile = BTreeMap<String, String>;
/// Every profile of both files, by name.
type Profiles = BTreeMap<String, Profile>;

/// A role chain longer than this is a loop in the files.
const MAX_HOPS: usize = 8;

/// The profile's credentials, or `None` when there is no such profile and
/// none was asked for by name.
pub async fn read() -> Found {
    let named = var("AWS_PROFILE").or_else(|| var("AWS_DEFAULT_PROFILE"));
    let name = named.clone().unwrap_or_else(|| "default".into());
    let profiles = load();
    if !profiles.contains_key(&name) {
        return match named {
            Some(name) => Err(format!("profile {name} (AWS_PROFILE) is in neither file")),
            None => Ok(None),
        };
    }
    let (base, roles) = plan(&profiles, &name)?;
    let mut credentials = match base {
        Base::Keys(keys) => keys,
        Base::Source(source) => source_credentials(&source).await?,
    };
    for hop in roles.iter().rev() {
        let region = region(&profiles, &name);
        credentials = sts::assume_role(
            credentials,
            region,
            &hop.role,
            hop.external_id.as_deref(),
            "sts-assume-role",
        )
        .await
        .map_err(|err| format!("profile {}: {err}", hop.profile))?;
    }
    Ok(Some(credentials))
}

/// Where a role chain starts.
#[derive(Debug)]
enum Base {
    Keys(Credentials),
    /// A `credential_source`: Environment, EcsContainer or
    /// Ec2InstanceMetadata.
    Source(String),
}

/// One role to assume, named by `profile`.
#[derive(Debug, PartialEq)]
struct Hop {
    profile: String,
    role: String,
    external_id: Option<String>,
}

/// Follow `source_profile` from `name` to where the chain starts; the roles
/// come back outermost first.
fn plan(profiles: &Profiles, name: &str) -> Result<(Base, Vec<Hop>), String> {
    let mut roles = Vec::new();
    let mut name = name.to_string();
    for _ in 0..MAX_HOPS {
        let profile = profiles
            .get(&name)
            .ok_or_else(|| format!("profile {name} is in neither file"))?;
        let Some(role) = profile.get("role_arn") else {
            return Ok((Base::Keys(keys(&name, profile)?), roles));
        };
        roles.push(Hop {
            profile: name.clone(),
            role: role.clone(),
            external_id: profile.get("external_id").cloned(),
        });
        match (
            profile.get("source_profile"),
            profile.get("credential_source"),
        ) {
            (Some(source), _) if *source == name => {
                return Ok((Base::Keys(keys(&name, profile)?), roles));
            }
            (Some(source), _) => name = source.clone(),
            (None, Some(source)) => return Ok((Base::Source(source.clone()), roles)),
            (None, None) => {
                return Err(format!(
                    "profile {name}: role_arn needs source_profile or credential_source{}",
                    unread(profile)
                        .map(|k| format!(" ({k} is not read)"))
                        .unwrap_or_default()
                ))
            }
        }
    }
    Err(format!(
        "profile {name}: source_profile goes round more than {MAX_HOPS} times"
    ))
}

/// A profile's static keys.
fn keys(name: &str, profile: &Profile) -> Result<Credentials, String> {
    match (
        profile.get("aws_access_key_id"),
        profile.get("aws_secret_access_key"),
    ) {
        (Some(id), Some(secret)) => Ok(Credentials::new(
            id,
            secret,
            profile.get("aws_session_token").cloned(),
            None,
            "profile",
        )),
        _ => Err(match unread(profile) {
            Some(key) => format!("profile {name} uses {key}, which vpc-probe does not read"),
            None => format!("profile {name} has no aws_access_key_id and aws_secret_access_key"),
        }),
    }
}

/// A key of a kind of profile the probe does not read.
fn unread(profile: &Profile) -> Option<&'static str> {
    [
        "sso_session",
        "sso_start_url",
        "credential_process",
        "web_identity_token_file",
    ]
    .into_iter()
    .find(|key| profile.contains_key(*key))
}

async fn source_credentials(source: &str) -> Result<Credentials, String> {
    let found = match source {
        "Environment" => env::read(),
        "EcsContainer" => remote::container().await,
        "Ec2InstanceMetadata" => remote::instance_metadata().await,
        other => return Err(format!("credential_source {other} is not one of Environment, EcsContainer, Ec2InstanceMetadata")),
    }?;
    found.ok_or_else(|| format!("credential_source {source} has no credentials"))
}

/// The region STS is asked in: the environment's, else the profile's,
/// else us-east-1.
fn region(profiles: &Profiles, name: &str) -> String {
    var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .or_else(|| profiles.get(name).and_then(|p| p.get("region")).cloned())
        .unwrap_or_else(|| "us-east-1".into())
}

/// Both files, the credentials file's keys over the config file's.
fn load() -> Profiles {
    let home = || {
        var("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".aws")
    };
    let config = var("AWS_CONFIG_FILE").map_or_else(|| home().join("config"), PathBuf::from);
    let shared = var("AWS_SHARED_CREDENTIALS_FILE")
        .map_or_else(|| home().join("credentials"), PathBuf::from);
    let read = |path: &PathBuf| std::fs::read_to_string(path).unwrap_or_default();
    let mut profiles = parse(&read(&config), File::Config);
    for (name, keys) in parse(&read(&shared), File::Credentials) {
        profiles.entry(name).or_default().extend(keys);
    }
    profiles
}

/// Which of the two files: they name their sections differently.
#[derive(Debug, Clone, Copy)]
enum File {
    /// `[default]` and `[profile NAME]`; other sections are not profiles.
    Config,
    /// `[NAME]`.
    Credentials,
}

/// The files' INI dialect: `key = value` under `[section]`, `#` and `;`
/// comments, indented lines (sub-properties) skipped.
fn parse(text: &str, file: File) -> Profiles {
    let mut profiles = Profiles::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if let Some((header, _comment)) = trimmed.strip_prefix('[').and_then(|h| h.split_once(']'))
        {
            current = section(header.trim(), file);
            continue;
        }
        let (Some(name), false, Some((key, value))) = (
            &current,
            line.starts_with(char::is_whitespace),
            trimmed.split_once('='),
        ) else {
            continue;
        };
        let value = value.split(" #").next().unwrap_or_default();
        let value = value.split(" ;").next().unwrap_or_default();
        profiles
            .entry(name.clone())
            .or_default()
            .insert(key.trim().to_string(), value.trim().to_string());
    }
    profiles
}

fn section(header: &str, file: File) -> Option<String> {
    match file {
        File::Credentials => Some(header.to_string()),
        File::Config if header == "default" => Some(header.to_string()),
        File::Config => header
            .strip_prefix("profile")
            .filter(|rest| rest.starts_with(char::is_whitespace))
            .map(|rest| rest.trim().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(config: &str, credentials: &str) -> Profiles {
        let mut profiles = parse(config, File::Config);
        for (name, keys) in parse(credentials, File::Credentials) {
            profiles.entry(name).or_default().extend(keys);
        }
        profiles
    }

    #[test]
    fn the_files_name_their_sections_each_their_own_way() {
        let profiles = both(
            "[default]\nregion = eu-west-1\n[profile ops] # the team's\nrole_arn = arn:aws:iam::1:role/r ; inline\n\
             [sso-session corp]\nsso_region = x\n[ops]\nignored = 1\n",
            "# keys\n[default]\naws_access_key_id = AKIA1\naws_secret_access_key=s1\n\
             [ops]\n  nested = skipped\nsource_profile = default\n",
        );
        assert_eq!(profiles["default"]["region"], "eu-west-1");
        assert_eq!(profiles["default"]["aws_access_key_id"], "AKIA1");
        assert_eq!(profiles["default"]["aws_secret_access_key"], "s1");
        assert_eq!(profiles["ops"]["role_arn"], "arn:aws:iam::1:role/r");
        assert_eq!(profiles["ops"]["source_profile"], "default");
        assert!(!profiles["ops"].contains_key("nested"));
        assert!(
            !profiles["ops"].contains_key("ignored"),
            "[ops] in config is no profile"
        );
        assert!(!profiles.contains_key("sso-session corp"));
    }

    #[test]
    fn a_role_chain_is_followed_to_its_keys() {
        let profiles = both(
            "[profile a]\nrole_arn = arn:a\nsource_profile = b\nexternal_id = x\n\
             [profile b]\nrole_arn = arn:b\nsource_profile = c\n",
            "[c]\naws_access_key_id = AKIAC\naws_secret_access_key = sc\n",
        );
        let (base, roles) = plan(&profiles, "a").unwrap();
        assert!(matches!(base, Base::Keys(k) if k.access_key_id() == "AKIAC"));
        let roles: Vec<_> = roles
            .iter()
            .map(|h| (h.role.as_str(), h.external_id.as_deref()))
            .collect();
        assert_eq!(roles, [("arn:a", Some("x")), ("arn:b", None)]);
    }

    #[test]
    fn a_role_may_start_from_its_own_keys_or_a_credential_source() {
        let profiles = both(
            "[profile own]\nrole_arn = arn:own\nsource_profile = own\n\
             [profile task]\nrole_arn = arn:task\ncredential_source = EcsContainer\n",
            "[own]\naws_access_key_id = AKIAO\naws_secret_access_key = so\n",
        );
        assert!(matches!(plan(&profiles, "own").unwrap().0, Base::Keys(_)));
        assert!(
            matches!(plan(&profiles, "task").unwrap().0, Base::Source(s) if s == "EcsContainer")
        );
    }

    #[test]
    fn what_cannot_be_read_is_named() {
        let profiles = both(
            "[profile loop]\nrole_arn = arn:l\nsource_profile = loop2\n\
             [profile loop2]\nrole_arn = arn:l2\nsource_profile = loop\n\
             [profile sso]\nsso_session = corp\n\
             [profile orphan]\nrole_arn = arn:o\n\
             [profile web]\nrole_arn = arn:w\nweb_identity_token_file = /t\n",
            "",
        );
        let why = |name: &str| plan(&profiles, name).unwrap_err();
        assert!(why("loop").contains("more than 8 times"), "{}", why("loop"));
        assert!(why("sso").contains("uses sso_session"), "{}", why("sso"));
        assert!(
            why("orphan").contains("needs source_profile"),
            "{}",
            why("orphan")
        );
        assert!(
            why("web").contains("web_identity_token_file is not read"),
            "{}",
            why("web")
        );
        assert!(why("absent").contains("in neither file"));
    }
}
