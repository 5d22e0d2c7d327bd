//! The outbound HTTP client: ureq + rustls, proxy off, redirects off, the URL policy enforced in
//! the resolver (the addresses checked are the addresses dialled, so DNS rebinding cannot slip
//! a private address in after registration), the webhook's timeout as the whole-attempt budget,
//! and at most 2 KiB of the response read.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ureq::http::Uri;
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::domain::retry::{AttemptError, AttemptResult, retry_after, status_error};
use crate::domain::time::Timestamp;
use crate::domain::url_policy::{PolicyError, UrlPolicy, WebhookUrl, loggable_url};
use crate::domain::webhook::MAX_TIMEOUT_SECS;

/// Response bytes kept for the delivery log.
pub const EXCERPT_BYTES: u64 = 2048;

/// Name resolution, replaceable so tests can make a host resolve where they want without DNS.
pub type Lookup = Arc<dyn Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync>;

/// The registration-time check of a webhook URL: the policy, with `lookup` or else the system
/// resolver answering for the host (a blocking call).
pub fn check_webhook_url(
    policy: &UrlPolicy,
    lookup: Option<&Lookup>,
    raw: &str,
) -> Result<WebhookUrl, PolicyError> {
    match lookup {
        Some(lookup) => policy.check_url(raw, |host, port| lookup(host, port)),
        None => policy.check_url(raw, |host, port| {
            (host, port).to_socket_addrs().map(Iterator::collect)
        }),
    }
}

/// Refusal by the URL policy at connect time.
#[derive(Debug)]
struct SsrfBlocked(String);

impl fmt::Display for SsrfBlocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SsrfBlocked {}

/// How long a name's addresses are reused before the system resolver is asked again.
const NAME_TTL: Duration = Duration::from_secs(10);
/// Names remembered at most; the memory is cleared when it fills.
const NAMES_KEPT: usize = 1024;

struct GuardedResolver {
    policy: UrlPolicy,
    lookup: Option<Lookup>,
    system: DefaultResolver,
    /// ureq resolves for every request, pooled connection or not, and the system resolver
    /// starts a thread each time to enforce the timeout: answers are reused for [`NAME_TTL`].
    /// Every address is checked against the policy on every use, cached or not.
    names: Mutex<HashMap<(String, u16), Resolved>>,
}

/// A name's addresses and when the system resolver gave them.
type Resolved = (Instant, Vec<SocketAddr>);

impl GuardedResolver {
    fn system_lookup(
        &self,
        host: &str,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<Vec<SocketAddr>, ureq::Error> {
        let port = default_port(uri);
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let key = (host.to_string(), port);
        if let Some((at, addrs)) = self.names.lock().get(&key)
            && at.elapsed() < NAME_TTL
        {
            return Ok(addrs.clone());
        }
        let addrs = self.system.resolve(uri, config, timeout)?.to_vec();
        let mut names = self.names.lock();
        if names.len() >= NAMES_KEPT {
            names.clear();
        }
        names.insert(key, (Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}

/// The URI's port, or its scheme's.
fn default_port(uri: &Uri) -> u16 {
    let scheme_port = if uri.scheme_str() == Some("http") {
        80
    } else {
        443
    };
    uri.port_u16().unwrap_or(scheme_port)
}

impl fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match &self.lookup {
            Some(lookup) => lookup(host.trim_end_matches('.'), default_port(uri))
                .map_err(|_| ureq::Error::HostNotFound)?,
            None => self.system_lookup(host, uri, config, timeout)?,
        };
        self.policy
            .check_resolved(host, &addrs)
            .map_err(|e| match e {
                PolicyError::DoesNotResolve { .. } => ureq::Error::HostNotFound,
                refused => ureq::Error::Other(Box::new(SsrfBlocked(refused.to_string()))),
            })?;
        let mut out = self.empty();
        // ureq holds at most 16 addresses; every one was checked above.
        for addr in addrs.into_iter().take(16) {
            out.push(addr);
        }
        Ok(out)
    }
}

/// Sends delivery attempts. Webhook timeouts are whole seconds in 1..=60.
pub struct Client {
    tls: TlsConfig,
    policy: UrlPolicy,
    lookup: Option<Lookup>,
    /// One agent per timeout, made on first use. The timeout lives on the agent rather than on
    /// each request because ureq caches the TLS setup (root store included) only for
    /// agent-level settings; a per-request timeout would rebuild it for every new connection.
    agents: Vec<OnceLock<ureq::Agent>>,
}

/// The web PKI roots, plus the PEM certificates of `extra` when given.
fn root_certs(extra: Option<&Path>) -> Result<RootCerts, String> {
    let Some(path) = extra else {
        return Ok(RootCerts::WebPki);
    };
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut certs: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    let mut extra_count = 0;
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(cert) =
            item.map_err(|e| format!("{}: {e}", path.display()))?
        {
            certs.push(cert);
            extra_count += 1;
        }
    }
    if extra_count == 0 {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(RootCerts::from(certs))
}

impl Client {
    pub fn new(
        policy: UrlPolicy,
        lookup: Option<Lookup>,
        extra_ca: Option<&Path>,
    ) -> Result<Client, String> {
        Ok(Client {
            tls: TlsConfig::builder()
                .root_certs(root_certs(extra_ca)?)
                .build(),
            policy,
            lookup,
            agents: (0..=MAX_TIMEOUT_SECS).map(|_| OnceLock::new()).collect(),
        })
    }

    fn agent(&self, timeout_seconds: u32) -> &ureq::Agent {
        let secs = timeout_seconds.clamp(1, MAX_TIMEOUT_SECS);
        self.agents[secs as usize].get_or_init(|| {
            let config = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .proxy(None)
                .https_only(self.policy.https_only)
                .user_agent(format!("leadbase/{}", env!("CARGO_PKG_VERSION")))
                .tls_config(self.tls.clone())
                .timeout_global(Some(Duration::from_secs(u64::from(secs))))
                .max_idle_connections(256)
                .max_idle_connections_per_host(8)
                .build();
            let resolver = GuardedResolver {
                policy: self.policy.clone(),
                lookup: self.lookup.clone(),
                system: DefaultResolver::default(),
                names: Mutex::new(HashMap::new()),
            };
            ureq::Agent::with_parts(config, DefaultConnector::new(), resolver)
        })
    }

    /// POSTs `body` and reports what happened; never panics, never errors.
    pub fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
        timeout_seconds: u32,
        started_at: Timestamp,
    ) -> AttemptResult {
        let clock = Instant::now();
        let mut request = self.agent(timeout_seconds).post(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let outcome = request.send(body);
        let latency =
            |clock: Instant| u32::try_from(clock.elapsed().as_millis()).unwrap_or(u32::MAX);
        match outcome {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry = retry_after(
                    status,
                    response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()),
                    started_at.plus_ms(clock.elapsed().as_millis() as i64),
                );
                let mut excerpt = Vec::new();
                let _ = response
                    .body_mut()
                    .as_reader()
                    .take(EXCERPT_BYTES)
                    .read_to_end(&mut excerpt);
                AttemptResult {
                    started_at,
                    latency_ms: latency(clock),
                    response_status: Some(status),
                    error: status_error(status),
                    response_body_excerpt: String::from_utf8_lossy(&excerpt).into_owned(),
                    retry_after_secs: retry,
                }
            }
            Err(err) => {
                let kind = classify(&err);
                tracing::debug!(url = %loggable_url(url), error = %err, "delivery attempt failed");
                AttemptResult {
                    started_at,
                    latency_ms: latency(clock),
                    response_status: None,
                    error: Some(kind),
                    response_body_excerpt: String::new(),
                    retry_after_secs: None,
                }
            }
        }
    }
}

fn classify(err: &ureq::Error) -> AttemptError {
    match err {
        ureq::Error::Timeout(_) => AttemptError::Timeout,
        ureq::Error::HostNotFound => AttemptError::Dns,
        ureq::Error::Other(inner) if inner.is::<SsrfBlocked>() => AttemptError::SsrfBlocked,
        ureq::Error::RequireHttpsOnly(_) => AttemptError::SsrfBlocked,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => AttemptError::Tls,
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => AttemptError::Timeout,
        ureq::Error::Io(io) if io.get_ref().is_some_and(|e| e.is::<rustls::Error>()) => {
            AttemptError::Tls
        }
        _ => AttemptError::Connect,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_resolver_refuses_localhost() {
        // Real but local resolution (hosts file); nothing leaves the machine.
        let policy = UrlPolicy {
            https_only: true,
            allowed_private: Vec::new(),
        };
        match check_webhook_url(&policy, None, "https://localhost/") {
            Err(PolicyError::HostNotAllowed { refusal, .. }) => {
                assert_eq!(refusal.reason, "loopback")
            }
            other => panic!("expected a loopback refusal, got {other:?}"),
        }
    }
}
