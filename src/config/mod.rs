//! Typed configuration: the schema, its compiled-in defaults and its validation. Where values
//! come from (defaults < TOML file < environment < flags) is `sources.rs`. Every value is parsed
//! into its type when loaded, so nothing past startup re-parses it; every error names the key
//! and the bad value.

mod sources;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use ipnet::IpNet;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

pub use sources::{Sources, default_keys, env_name, parse_flag};

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
    pub events: EventsConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// HTTP worker threads; 0 means one per CPU.
    pub workers: u32,
    /// Peers whose `X-Forwarded-For` is believed.
    #[serde(with = "networks")]
    pub trusted_proxies: Vec<IpNet>,
    /// How long a request body may take to arrive, from when it is first read.
    pub body_timeout_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub path: PathBuf,
    /// redb's page cache, in MiB.
    pub cache_mb: u32,
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
pub struct EventsConfig {
    /// How long the event log keeps an event (spec §11.4).
    pub retention_days: u32,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig { retention_days: 30 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    pub delivery_threads: u32,
    pub max_in_flight_per_webhook: u32,
    /// Attempts in flight at once for one tenant's webhooks together: its share of the threads.
    pub max_in_flight_per_tenant: u32,
    pub max_per_tenant: u32,
    pub retry_schedule_seconds: Vec<u64>,
    pub rotation_overlap_hours: u32,
    pub disable_after_failing_hours: u32,
    #[serde(with = "networks")]
    pub allowed_private_cidrs: Vec<IpNet>,
    pub https_only: bool,
    pub extra_ca_file: Option<PathBuf>,
    pub delivery_retention_days: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 0,
            trusted_proxies: Vec::new(),
            // A 4 MiB bulk import arrives in 30 s at about 1.2 Mbit/s, a 64 KiB body at 18 kbit/s;
            // a client sending slower than that holds a connection for nothing.
            body_timeout_seconds: 30,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: PathBuf::from("./data/leadbase.redb"),
            // The hot pages of a few hundred thousand leads; small enough for a 1 GB VPS.
            cache_mb: 256,
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
            // Delivery threads mostly wait on receivers, on small stacks: many cost little, and a
            // few slow receivers cannot hold them all.
            delivery_threads: 16,
            max_in_flight_per_webhook: 2,
            max_in_flight_per_tenant: 8,
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

/// `host:port` with a numeric host, as the listener binds it.
fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let raw = String::deserialize(d)?;
    raw.parse()
        .map_err(|_| D::Error::custom(format!("`{raw}` is not an address such as 127.0.0.1:8080")))
}

/// Networks as CIDRs, or single addresses meaning a /32 or /128 (which ipnet's own serde support
/// refuses); written back as CIDRs.
mod networks {
    use super::*;
    use serde::Serializer;

    pub fn serialize<S: Serializer>(nets: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(nets.iter().map(IpNet::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|raw| {
                let raw = raw.trim();
                raw.parse::<IpNet>()
                    .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| D::Error::custom(format!("`{raw}` is not an IP address or CIDR")))
            })
            .collect()
    }
}

impl Config {
    /// The merged sources as the typed configuration: each value parsed into its type, then
    /// checked against its range. A value that does not parse is reported at its dotted key
    /// (`message()`, because toml's `Display` would name the key a second time).
    fn from_table(table: toml::Table) -> Result<Config, ConfigError> {
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| invalid(&e.path().to_string(), e.inner().message()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
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
            (
                "server.body_timeout_seconds",
                self.server.body_timeout_seconds,
            ),
            ("limits.per_minute", self.limits.per_minute),
            ("limits.per_hour", self.limits.per_hour),
            ("limits.bulk_per_minute", self.limits.bulk_per_minute),
            (
                "limits.unauthenticated_per_minute",
                self.limits.unauthenticated_per_minute,
            ),
            ("idempotency.ttl_hours", self.idempotency.ttl_hours),
            ("storage.cache_mb", self.storage.cache_mb),
            ("webhooks.delivery_threads", self.webhooks.delivery_threads),
            (
                "webhooks.max_in_flight_per_webhook",
                self.webhooks.max_in_flight_per_webhook,
            ),
            (
                "webhooks.max_in_flight_per_tenant",
                self.webhooks.max_in_flight_per_tenant,
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
            ("events.retention_days", self.events.retention_days),
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
        if self.storage.cache_mb > 65_536 {
            return Err(invalid(
                "storage.cache_mb",
                "must be at most 65536 (64 GiB)",
            ));
        }
        if self.webhooks.max_in_flight_per_webhook
            > crate::domain::webhook_controls::MAX_CONCURRENCY
        {
            return Err(invalid(
                "webhooks.max_in_flight_per_webhook",
                "must be at most 64, the most a webhook's own max_concurrency may be",
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

    /// The SSRF rules for webhook URLs, used at registration and by the delivery client.
    pub fn url_policy(&self) -> crate::domain::url_policy::UrlPolicy {
        crate::domain::url_policy::UrlPolicy {
            https_only: self.webhooks.https_only,
            allowed_private: self.webhooks.allowed_private_cidrs.clone(),
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

#[cfg(test)]
mod tests {
    use super::sources::tests::load;
    use super::*;

    fn net(raw: &str) -> IpNet {
        raw.parse().unwrap()
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let err = load(Some("[limits]\nper_minute = \"lots\"\n"), &[], &[]).unwrap_err();
        assert!(err.to_string().contains("limits.per_minute"), "{err}");
        let err = load(None, &[], &[("server.listen", "nowhere")]).unwrap_err();
        assert!(err.to_string().contains("server.listen"), "{err}");
        assert!(err.to_string().contains("`nowhere`"), "{err}");
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
        assert!(err.to_string().contains("`10.0.0.0/33`"), "{err}");
        let err = load(None, &[("LEADBASE_LEADS_DEFAULT_COUNTRY_CODE", "+1")], &[]).unwrap_err();
        assert!(
            err.to_string().contains("leads.default_country_code"),
            "{err}"
        );
    }

    #[test]
    fn addresses_and_networks_are_typed_at_load() {
        let file = "[server]\nlisten = \"[::1]:9000\"\n\
                    trusted_proxies = [\"10.0.0.7\", \"::1\", \"192.168.7.9/16\"]\n";
        let config = load(Some(file), &[], &[]).unwrap();
        assert_eq!(config.server.listen, "[::1]:9000".parse().unwrap());
        assert_eq!(
            config.server.trusted_proxies,
            [net("10.0.0.7/32"), net("::1/128"), net("192.168.0.0/16")],
            "a bare address is one host; host bits are dropped"
        );
    }

    #[test]
    fn typed_values_round_trip_through_toml() {
        let mut config = Config::default();
        config.server.listen = "0.0.0.0:80".parse().unwrap();
        config.webhooks.allowed_private_cidrs = vec![net("10.0.0.0/8"), net("fd00::/8")];
        let table = toml::Table::try_from(&config).unwrap();
        assert_eq!(table["server"]["listen"].as_str(), Some("0.0.0.0:80"));
        assert_eq!(Config::from_table(table), Ok(config));
    }
}
