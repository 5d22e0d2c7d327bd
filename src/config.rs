//! Typed configuration: compiled-in defaults < TOML file < `LEADBASE_<SECTION>_<KEY>` environment
//! variables < command-line flags (`--set section.key=value`, `--listen`). Loaded and validated
//! once; every error names the key and the bad value.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub admin: AdminConfig,
    pub limits: LimitsConfig,
    pub idempotency: IdempotencyConfig,
    pub leads: LeadsConfig,
    pub webhooks: WebhooksConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    /// HTTP worker threads; 0 means one per CPU.
    pub workers: u32,
    /// Peers whose `X-Forwarded-For` is believed (addresses or CIDRs).
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// When unset, the first start generates a token and writes it to `<data dir>/admin-token`.
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub per_minute: u32,
    pub per_hour: u32,
    pub bulk_per_minute: u32,
    pub unauthenticated_per_minute: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencyConfig {
    pub ttl_hours: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeadsConfig {
    pub default_country_code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    pub delivery_threads: u32,
    pub max_in_flight_per_webhook: u32,
    pub max_per_tenant: u32,
    pub retry_schedule_seconds: Vec<u64>,
    pub rotation_overlap_hours: u32,
    pub disable_after_failing_hours: u32,
    pub allowed_private_cidrs: Vec<String>,
    pub https_only: bool,
    pub extra_ca_file: Option<PathBuf>,
    pub delivery_retention_days: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            workers: 0,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: PathBuf::from("./data/leadbase.redb"),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            per_minute: 60,
            per_hour: 1000,
            bulk_per_minute: 10,
            unauthenticated_per_minute: 30,
        }
    }
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig { ttl_hours: 24 }
    }
}

impl Default for LeadsConfig {
    fn default() -> Self {
        LeadsConfig {
            default_country_code: "1".into(),
        }
    }
}

/// Delays after failure n, from the spec: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 14 h, 20 h, 24 h.
pub const DEFAULT_RETRY_SCHEDULE: [u64; 10] = [
    5, 300, 1_800, 7_200, 18_000, 36_000, 36_000, 50_400, 72_000, 86_400,
];

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            delivery_threads: 4,
            max_in_flight_per_webhook: 2,
            max_per_tenant: 20,
            retry_schedule_seconds: DEFAULT_RETRY_SCHEDULE.to_vec(),
            rotation_overlap_hours: 24,
            disable_after_failing_hours: 120,
            allowed_private_cidrs: Vec::new(),
            https_only: true,
            extra_ca_file: None,
            delivery_retention_days: 30,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("config file {path} is not valid TOML: {reason}")]
    Syntax { path: String, reason: String },
    #[error("invalid config: {key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("unknown config key `{0}`")]
    UnknownKey(String),
    #[error("unknown environment variable {0}: no such config key")]
    UnknownEnv(String),
    #[error("invalid flag --set {0}: expected section.key=value")]
    BadFlag(String),
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        reason: reason.into(),
    }
}

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
    ("storage", "path", Kind::Str),
    ("admin", "token", Kind::Str),
    ("limits", "per_minute", Kind::Int),
    ("limits", "per_hour", Kind::Int),
    ("limits", "bulk_per_minute", Kind::Int),
    ("limits", "unauthenticated_per_minute", Kind::Int),
    ("idempotency", "ttl_hours", Kind::Int),
    ("leads", "default_country_code", Kind::Str),
    ("webhooks", "delivery_threads", Kind::Int),
    ("webhooks", "max_in_flight_per_webhook", Kind::Int),
    ("webhooks", "max_per_tenant", Kind::Int),
    ("webhooks", "retry_schedule_seconds", Kind::IntList),
    ("webhooks", "rotation_overlap_hours", Kind::Int),
    ("webhooks", "disable_after_failing_hours", Kind::Int),
    ("webhooks", "allowed_private_cidrs", Kind::StrList),
    ("webhooks", "https_only", Kind::Bool),
    ("webhooks", "extra_ca_file", Kind::Str),
    ("webhooks", "delivery_retention_days", Kind::Int),
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
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| invalid(&e.path().to_string(), e.inner().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.trusted_proxies()?;
        if self.server.workers > 256 {
            return Err(invalid(
                "server.workers",
                "must be between 0 (one per CPU) and 256",
            ));
        }
        if self.storage.path.as_os_str().is_empty() {
            return Err(invalid("storage.path", "must not be empty"));
        }
        if let Some(token) = &self.admin.token
            && token.len() < 16
        {
            return Err(invalid("admin.token", "must be at least 16 characters"));
        }
        for (key, value) in [
            ("limits.per_minute", self.limits.per_minute),
            ("limits.per_hour", self.limits.per_hour),
            ("limits.bulk_per_minute", self.limits.bulk_per_minute),
            (
                "limits.unauthenticated_per_minute",
                self.limits.unauthenticated_per_minute,
            ),
            ("idempotency.ttl_hours", self.idempotency.ttl_hours),
            ("webhooks.delivery_threads", self.webhooks.delivery_threads),
            (
                "webhooks.max_in_flight_per_webhook",
                self.webhooks.max_in_flight_per_webhook,
            ),
            ("webhooks.max_per_tenant", self.webhooks.max_per_tenant),
            (
                "webhooks.disable_after_failing_hours",
                self.webhooks.disable_after_failing_hours,
            ),
            (
                "webhooks.delivery_retention_days",
                self.webhooks.delivery_retention_days,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        let cc = &self.leads.default_country_code;
        if cc.is_empty()
            || cc.len() > 3
            || !cc.bytes().all(|b| b.is_ascii_digit())
            || cc.starts_with('0')
        {
            return Err(invalid(
                "leads.default_country_code",
                format!(
                    "`{cc}` is not a country calling code (1 to 3 digits, e.g. \"1\" or \"44\")"
                ),
            ));
        }
        if self.webhooks.delivery_threads > 256 {
            return Err(invalid("webhooks.delivery_threads", "must be at most 256"));
        }
        if self.webhooks.rotation_overlap_hours > 168 {
            return Err(invalid(
                "webhooks.rotation_overlap_hours",
                "must be between 0 and 168",
            ));
        }
        let schedule = &self.webhooks.retry_schedule_seconds;
        if schedule.is_empty() || schedule.iter().any(|&s| s == 0 || s > 7 * 86_400) {
            return Err(invalid(
                "webhooks.retry_schedule_seconds",
                "must list at least one delay, each between 1 and 604800 seconds",
            ));
        }
        self.allowed_private_cidrs()?;
        if let Some(path) = &self.webhooks.extra_ca_file
            && !path.is_file()
        {
            return Err(invalid(
                "webhooks.extra_ca_file",
                format!("{} is not a readable file", path.display()),
            ));
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.listen.parse().map_err(|_| {
            invalid(
                "server.listen",
                format!(
                    "`{}` is not an address such as 127.0.0.1:8080",
                    self.server.listen
                ),
            )
        })
    }

    pub fn trusted_proxies(&self) -> Result<Vec<IpNet>, ConfigError> {
        parse_cidrs("server.trusted_proxies", &self.server.trusted_proxies)
    }

    pub fn allowed_private_cidrs(&self) -> Result<Vec<IpNet>, ConfigError> {
        parse_cidrs(
            "webhooks.allowed_private_cidrs",
            &self.webhooks.allowed_private_cidrs,
        )
    }

    /// The SSRF rules for webhook URLs, used at registration and by the delivery client.
    pub fn url_policy(&self) -> crate::domain::url_policy::UrlPolicy {
        crate::domain::url_policy::UrlPolicy {
            https_only: self.webhooks.https_only,
            allowed_private: self.allowed_private_cidrs().unwrap_or_default(),
        }
    }

    /// The directory that holds the data file (and the generated admin token).
    pub fn data_dir(&self) -> PathBuf {
        match self.storage.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

/// CIDRs, or single addresses meaning a /32 or /128.
fn parse_cidrs(key: &str, raw: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    raw.iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| invalid(key, format!("`{s}` is not an IP address or CIDR")))
        })
        .collect()
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
mod tests {
    use super::*;

    fn load(
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
        assert_eq!(config.server.listen, "127.0.0.1:8080");
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
            ["127.0.0.0/8", "10.1.2.3"]
        );
        assert_eq!(config.webhooks.retry_schedule_seconds, [1, 2, 3]);
        assert_eq!(config.admin.token.as_deref(), Some("12345678901234567890"));
        assert_eq!(config.webhooks.max_in_flight_per_webhook, 7);
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let err = load(Some("[limits]\nper_minute = \"lots\"\n"), &[], &[]).unwrap_err();
        assert!(err.to_string().contains("limits.per_minute"), "{err}");
        let err = load(None, &[("LEADBASE_LIMITS_PER_MINUTE", "abc")], &[]).unwrap_err();
        assert!(
            err.to_string().contains("LEADBASE_LIMITS_PER_MINUTE"),
            "{err}"
        );
        let err = load(None, &[], &[("server.listen", "nowhere")]).unwrap_err();
        assert!(err.to_string().contains("server.listen"), "{err}");
        let err = load(Some("[limits]\nper_minute = 0\n"), &[], &[]).unwrap_err();
        assert!(err.to_string().contains("limits.per_minute"), "{err}");
        let err = load(
            None,
            &[("LEADBASE_WEBHOOKS_ALLOWED_PRIVATE_CIDRS", "10.0.0.0/33")],
            &[],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("webhooks.allowed_private_cidrs"),
            "{err}"
        );
        let err = load(None, &[("LEADBASE_LEADS_DEFAULT_COUNTRY_CODE", "+1")], &[]).unwrap_err();
        assert!(
            err.to_string().contains("leads.default_country_code"),
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
