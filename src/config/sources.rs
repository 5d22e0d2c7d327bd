//! Where configuration values come from: compiled-in defaults < TOML file <
//! `LEADBASE_<SECTION>_<KEY>` environment variables < command-line flags (`--set section.key=value`,
//! `--listen`). Each source is merged into one TOML table, which the schema then parses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Config, ConfigError, invalid};

/// The kind of a config value, so that environment and flag strings become the right TOML type.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    StrList,
    IntList,
}

/// Every key, with its kind. Sections contain no underscore, so `LEADBASE_WEBHOOKS_MAX_PER_TENANT`
/// splits unambiguously at the first underscore after the prefix.
const KEYS: &[(&str, &str, Kind)] = &[
    ("server", "listen", Kind::Str),
    ("server", "workers", Kind::Int),
    ("server", "trusted_proxies", Kind::StrList),
    ("server", "body_timeout_seconds", Kind::Int),
    ("storage", "path", Kind::Str),
    ("storage", "cache_mb", Kind::Int),
    ("admin", "token", Kind::Str),
    ("limits", "per_minute", Kind::Int),
    ("limits", "per_hour", Kind::Int),
    ("limits", "bulk_per_minute", Kind::Int),
    ("limits", "unauthenticated_per_minute", Kind::Int),
    ("idempotency", "ttl_hours", Kind::Int),
    ("leads", "default_country_code", Kind::Str),
    ("webhooks", "delivery_threads", Kind::Int),
    ("webhooks", "max_in_flight_per_webhook", Kind::Int),
    ("webhooks", "max_in_flight_per_tenant", Kind::Int),
    ("webhooks", "max_per_tenant", Kind::Int),
    ("webhooks", "retry_schedule_seconds", Kind::IntList),
    ("webhooks", "rotation_overlap_hours", Kind::Int),
    ("webhooks", "disable_after_failing_hours", Kind::Int),
    ("webhooks", "allowed_private_cidrs", Kind::StrList),
    ("webhooks", "https_only", Kind::Bool),
    ("webhooks", "extra_ca_file", Kind::Str),
    ("webhooks", "delivery_retention_days", Kind::Int),
    ("events", "retention_days", Kind::Int),
];

/// Where the configuration comes from, beyond the compiled-in defaults.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    pub file: Option<PathBuf>,
    /// `(name, value)` pairs; only names starting with `LEADBASE_` are looked at.
    pub env: Vec<(String, String)>,
    /// `("section.key", value)` pairs from flags, applied last.
    pub flags: Vec<(String, String)>,
}

impl Sources {
    pub fn from_process(file: Option<PathBuf>, flags: Vec<(String, String)>) -> Sources {
        Sources {
            file,
            env: std::env::vars().collect(),
            flags,
        }
    }
}

/// Parse `section.key=value` as given to `--set`.
pub fn parse_flag(raw: &str) -> Result<(String, String), ConfigError> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| ConfigError::BadFlag(raw.into()))?;
    if !key.contains('.') {
        return Err(ConfigError::BadFlag(raw.into()));
    }
    Ok((key.trim().to_string(), value.to_string()))
}

impl Config {
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let mut table = match &sources.file {
            Some(path) => read_file(path)?,
            None => toml::Table::new(),
        };
        check_known_keys(&table)?;
        for (name, value) in &sources.env {
            let Some(rest) = name.strip_prefix("LEADBASE_") else {
                continue;
            };
            let (section, key, kind) =
                lookup_env(rest).ok_or_else(|| ConfigError::UnknownEnv(name.clone()))?;
            set(&mut table, section, key, typed_value(kind, value, name)?);
        }
        for (dotted, value) in &sources.flags {
            let (section, key, kind) =
                lookup_dotted(dotted).ok_or_else(|| ConfigError::UnknownKey(dotted.clone()))?;
            set(&mut table, section, key, typed_value(kind, value, dotted)?);
        }
        Config::from_table(table)
    }
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax {
            path: path.display().to_string(),
            reason: e.message().to_string(),
        })
}

fn check_known_keys(table: &toml::Table) -> Result<(), ConfigError> {
    for (section, value) in table {
        if !KEYS.iter().any(|(s, _, _)| s == section) {
            return Err(ConfigError::UnknownKey(section.clone()));
        }
        let Some(inner) = value.as_table() else {
            return Err(invalid(section, "must be a [section] table"));
        };
        for key in inner.keys() {
            if !KEYS.iter().any(|(s, k, _)| s == section && k == key) {
                return Err(ConfigError::UnknownKey(format!("{section}.{key}")));
            }
        }
    }
    Ok(())
}

fn lookup_env(rest: &str) -> Option<(&'static str, &'static str, Kind)> {
    let lower = rest.to_ascii_lowercase();
    let (section, key) = lower.split_once('_')?;
    KEYS.iter()
        .find(|(s, k, _)| *s == section && *k == key)
        .copied()
}

fn lookup_dotted(dotted: &str) -> Option<(&'static str, &'static str, Kind)> {
    let (section, key) = dotted.split_once('.')?;
    KEYS.iter()
        .find(|(s, k, _)| *s == section && *k == key)
        .copied()
}

fn typed_value(kind: Kind, raw: &str, origin: &str) -> Result<toml::Value, ConfigError> {
    let raw = raw.trim();
    let int = |s: &str| {
        s.trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| invalid(origin, format!("`{s}` is not a whole number")))
    };
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect()
    };
    Ok(match kind {
        Kind::Str => toml::Value::String(raw.to_string()),
        Kind::Int => int(raw)?,
        Kind::Bool => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
            "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
            _ => return Err(invalid(origin, format!("`{raw}` is not true or false"))),
        },
        Kind::StrList => {
            toml::Value::Array(list(raw).into_iter().map(toml::Value::String).collect())
        }
        Kind::IntList => {
            toml::Value::Array(list(raw).iter().map(|s| int(s)).collect::<Result<_, _>>()?)
        }
    })
}

fn set(table: &mut toml::Table, section: &str, key: &str, value: toml::Value) {
    let entry = table
        .entry(section.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(inner) = entry {
        inner.insert(key.to_string(), value);
    }
}

/// The environment variable that sets a dotted key, for messages and docs.
pub fn env_name(dotted: &str) -> String {
    format!("LEADBASE_{}", dotted.replace('.', "_").to_ascii_uppercase())
}

/// Every key with its default value rendered as TOML, for `config.example.toml` checks.
pub fn default_keys() -> BTreeMap<String, String> {
    let defaults =
        toml::Value::try_from(Config::default()).unwrap_or(toml::Value::Table(Default::default()));
    let mut out = BTreeMap::new();
    for (section, key, _) in KEYS {
        let value = defaults
            .get(section)
            .and_then(|s| s.get(key))
            .map(|v| v.to_string())
            .unwrap_or_default();
        out.insert(format!("{section}.{key}"), value);
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::config::DEFAULT_RETRY_SCHEDULE;

    /// Loads from a file with this text (if any), these environment variables and these flags.
    pub(in crate::config) fn load(
        file: Option<&str>,
        env: &[(&str, &str)],
        flags: &[(&str, &str)],
    ) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = file.map(|text| {
            let p = dir.path().join("leadbase.toml");
            std::fs::write(&p, text).unwrap();
            p
        });
        Config::load(&Sources {
            file: path,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            flags: flags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    #[test]
    fn defaults_apply_without_any_source() {
        let config = load(None, &[], &[]).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(
            config.server.listen,
            SocketAddr::from(([127, 0, 0, 1], 8080))
        );
        assert_eq!(config.storage.path, PathBuf::from("./data/leadbase.redb"));
        assert_eq!(
            config.webhooks.retry_schedule_seconds,
            DEFAULT_RETRY_SCHEDULE
        );
    }

    #[test]
    fn file_overrides_defaults_env_overrides_file_flags_override_env() {
        let file = "[limits]\nper_minute = 10\nper_hour = 20\nbulk_per_minute = 3\n";
        let env = [
            ("LEADBASE_LIMITS_PER_HOUR", "200"),
            ("LEADBASE_LIMITS_BULK_PER_MINUTE", "4"),
        ];
        let flags = [("limits.bulk_per_minute", "5")];
        let config = load(Some(file), &env, &flags).unwrap();
        assert_eq!(config.limits.per_minute, 10, "file beats default");
        assert_eq!(config.limits.per_hour, 200, "env beats file");
        assert_eq!(config.limits.bulk_per_minute, 5, "flag beats env");
        assert_eq!(config.limits.unauthenticated_per_minute, 30, "default kept");
    }

    #[test]
    fn env_values_take_the_type_of_their_key() {
        let env = [
            ("LEADBASE_WEBHOOKS_HTTPS_ONLY", "false"),
            (
                "LEADBASE_WEBHOOKS_ALLOWED_PRIVATE_CIDRS",
                "127.0.0.0/8, 10.1.2.3",
            ),
            ("LEADBASE_WEBHOOKS_RETRY_SCHEDULE_SECONDS", "1,2,3"),
            ("LEADBASE_ADMIN_TOKEN", "12345678901234567890"),
            ("LEADBASE_WEBHOOKS_MAX_IN_FLIGHT_PER_WEBHOOK", "7"),
            ("UNRELATED", "x"),
        ];
        let config = load(None, &env, &[]).unwrap();
        assert!(!config.webhooks.https_only);
        assert_eq!(
            config.webhooks.allowed_private_cidrs,
            [
                "127.0.0.0/8".parse().unwrap(),
                "10.1.2.3/32".parse().unwrap()
            ]
        );
        assert_eq!(config.webhooks.retry_schedule_seconds, [1, 2, 3]);
        assert_eq!(config.admin.token.as_deref(), Some("12345678901234567890"));
        assert_eq!(config.webhooks.max_in_flight_per_webhook, 7);
    }

    #[test]
    fn bad_env_values_are_refused_naming_the_variable() {
        let err = load(None, &[("LEADBASE_LIMITS_PER_MINUTE", "abc")], &[]).unwrap_err();
        assert!(
            err.to_string().contains("LEADBASE_LIMITS_PER_MINUTE"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = load(Some("[limits]\nper_second = 1\n"), &[], &[]).unwrap_err();
        assert_eq!(err, ConfigError::UnknownKey("limits.per_second".into()));
        let err = load(Some("[nope]\nx = 1\n"), &[], &[]).unwrap_err();
        assert_eq!(err, ConfigError::UnknownKey("nope".into()));
        let err = load(None, &[("LEADBASE_LIMITS_PER_SECOND", "1")], &[]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::UnknownEnv("LEADBASE_LIMITS_PER_SECOND".into())
        );
        assert!(matches!(parse_flag("listen"), Err(ConfigError::BadFlag(_))));
    }

    #[test]
    fn the_example_file_documents_every_key_with_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let loaded = Config::load(&Sources {
            file: Some(path),
            ..Sources::default()
        })
        .unwrap();
        assert_eq!(
            loaded,
            Config::default(),
            "the example's values are the defaults"
        );
        for (section, key, _) in KEYS {
            assert!(text.contains(&format!("[{section}]")), "section {section}");
            assert!(
                text.lines()
                    .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = "))),
                "{section}.{key} is documented"
            );
        }
    }

    #[test]
    fn every_key_has_an_env_name_and_a_default_entry() {
        assert_eq!(
            env_name("webhooks.max_per_tenant"),
            "LEADBASE_WEBHOOKS_MAX_PER_TENANT"
        );
        assert_eq!(default_keys().len(), KEYS.len());
    }
}
