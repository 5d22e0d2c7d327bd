//! SSRF-safe policy for webhook target URLs.
//!
//! The same rules run when a webhook URL is registered ([`UrlPolicy::check_url`]) and at connect
//! time, where the HTTP client's DNS resolver calls [`UrlPolicy::check_resolved`] on the addresses
//! it is about to dial. Registration-time checks alone cannot stop DNS rebinding; the connect-time
//! check is the one that protects us, so it judges exactly the addresses that will be dialled.
//!
//! Decisions:
//! - Every judgement is made on IP addresses, never on host names, so no spelling of a name
//!   (case, IDNA, trailing dot) can slip past a rule.
//! - [`Target::host`] has one trailing dot stripped: `localhost.` is the fully qualified form of
//!   `localhost`, but glibc's hosts-file lookup does not match it, so resolving it verbatim would
//!   report "does not resolve" instead of the real reason. [`Target::url`] is left untouched.
//! - Any port is allowed: the danger is *which machine* we reach, and every port of a public
//!   machine is equally public. A missing port defaults from the scheme (443 / 80).
//! - An allow-listed CIDR admits exactly the addresses inside it. An IPv4 CIDR also admits the
//!   IPv4-mapped form (`::ffff:a.b.c.d`) of its addresses, because a dual-stack socket dialling
//!   that form reaches the very same IPv4 host. Other embeddings (6to4, Teredo, NAT64, ...) are
//!   not admitted by IPv4 CIDRs: they travel through a relay or translator, a different path.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use url::{Host, Url};

/// Longest URL we accept, counted both as typed and as normalised by the parser.
pub const MAX_URL_LEN: usize = 2048;

const PRIVATE: &str = "private (RFC 1918)";
const DOCUMENTATION: &str = "documentation";

#[derive(Debug, Clone)]
pub struct UrlPolicy {
    pub https_only: bool,
    /// Non-global ranges an operator has explicitly opened (e.g. an internal receiver).
    pub allowed_private: Vec<IpNet>,
}

/// Why an address is not globally routable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRefusal {
    pub ip: IpAddr,
    /// Name of the range, as returned by [`non_global_reason`].
    pub reason: &'static str,
    /// The IPv4 address an IPv6 transition address carries, when that is what was refused.
    pub embedded: Option<Ipv4Addr>,
}

/// Why a URL or address was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    Invalid(String),
    TooLong {
        len: usize,
    },
    SchemeNotAllowed {
        scheme: String,
        allowed: &'static str,
    },
    UserInfo,
    MissingHost,
    PortZero,
    AddressNotAllowed(AddressRefusal),
    HostNotAllowed {
        host: String,
        refusal: AddressRefusal,
    },
    DoesNotResolve {
        host: String,
        error: Option<String>,
    },
}

/// A webhook target URL that passed the whole policy when it was registered; only
/// [`UrlPolicy::check_url`] makes one.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

/// As [`loggable_url`].
impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WebhookUrl")
            .field(&loggable_url(&self.0))
            .finish()
    }
}

/// A webhook URL as logs may show it: scheme, host, port and path. Receivers often take a
/// token in the query string (`?token=...`), and the fragment is the sender's business; logs
/// are read by more people than the webhook's owner.
pub fn loggable_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(url) => {
            let host = url.host_str().unwrap_or_default();
            match url.port() {
                Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
                None => format!("{}://{host}{}", url.scheme(), url.path()),
            }
        }
        Err(_) => "<not a URL>".into(),
    }
}

impl WebhookUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// An IP-literal URL through the default policy, for tests of what holds one.
    #[cfg(test)]
    pub(crate) fn literal(raw: &str) -> WebhookUrl {
        let policy = UrlPolicy {
            https_only: true,
            allowed_private: Vec::new(),
        };
        policy
            .check_url(raw, |_, _| {
                Err(io::Error::other("IP literals are not looked up"))
            })
            .expect("a public IP-literal https URL")
    }
}

/// A URL that passed the syntax rules (not yet resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: Url,
    /// Host as the resolver should see it: no IPv6 brackets, one trailing dot stripped.
    pub host: String,
    pub port: u16,
}

impl Target {
    /// The address when the host is an IP literal; such hosts are never looked up.
    pub fn literal_ip(&self) -> Option<IpAddr> {
        match self.url.host()? {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        }
    }
}

impl UrlPolicy {
    /// Syntax rules only: scheme, user info, length, host presence.
    pub fn parse(&self, raw: &str) -> Result<Target, PolicyError> {
        // Checked before parsing so a huge input costs nothing, and after, because
        // percent-encoding can make the URL we would store and send longer than what was typed.
        check_len(raw.chars().count())?;
        let url = Url::parse(raw).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        check_len(url.as_str().len())?;

        let default_port = self.default_port(url.scheme())?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(PolicyError::UserInfo);
        }
        let host = match url.host() {
            Some(Host::Domain(name)) => name.strip_suffix('.').unwrap_or(name).to_owned(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(PolicyError::MissingHost),
        };
        if host.is_empty() {
            return Err(PolicyError::MissingHost);
        }
        let port = url.port().unwrap_or(default_port);
        if port == 0 {
            // No receiver listens there; on some systems a connect to it reaches something else.
            return Err(PolicyError::PortZero);
        }
        Ok(Target { url, host, port })
    }

    /// Accepts globally routable addresses and addresses inside `allowed_private`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), PolicyError> {
        self.refusal(ip)
            .map_or(Ok(()), |r| Err(PolicyError::AddressNotAllowed(r)))
    }

    /// Every address must pass: a client may dial any of them, and an attacker controlling DNS
    /// can mix one public address with the internal one they are after.
    pub fn check_resolved(&self, host: &str, addrs: &[SocketAddr]) -> Result<(), PolicyError> {
        if addrs.is_empty() {
            return Err(PolicyError::DoesNotResolve {
                host: host.to_owned(),
                error: None,
            });
        }
        match addrs.iter().find_map(|addr| self.refusal(addr.ip())) {
            Some(refusal) => Err(PolicyError::HostNotAllowed {
                host: host.to_owned(),
                refusal,
            }),
            None => Ok(()),
        }
    }

    /// [`parse`](Self::parse), resolve with `resolve` (IP literals are not looked up), then
    /// [`check_resolved`](Self::check_resolved).
    pub fn check_url(
        &self,
        raw: &str,
        resolve: impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>>,
    ) -> Result<WebhookUrl, PolicyError> {
        let target = self.parse(raw)?;
        let addrs = match target.literal_ip() {
            Some(ip) => vec![SocketAddr::new(ip, target.port)],
            None => {
                resolve(&target.host, target.port).map_err(|e| PolicyError::DoesNotResolve {
                    host: target.host.clone(),
                    error: Some(e.to_string()),
                })?
            }
        };
        self.check_resolved(&target.host, &addrs)?;
        Ok(WebhookUrl(target.url.into()))
    }

    fn default_port(&self, scheme: &str) -> Result<u16, PolicyError> {
        match (scheme, self.https_only) {
            ("https", _) => Ok(443),
            ("http", false) => Ok(80),
            _ => Err(PolicyError::SchemeNotAllowed {
                scheme: scheme.to_owned(),
                allowed: if self.https_only {
                    "https"
                } else {
                    "http or https"
                },
            }),
        }
    }

    fn refusal(&self, ip: IpAddr) -> Option<AddressRefusal> {
        if self.is_allow_listed(ip) {
            return None;
        }
        classify(ip).map(|(reason, embedded)| AddressRefusal {
            ip,
            reason,
            embedded,
        })
    }

    fn is_allow_listed(&self, ip: IpAddr) -> bool {
        // See the module docs: only the mapped form is the same destination as the IPv4 address.
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allowed_private
            .iter()
            .any(|net| net.contains(&ip) || mapped.is_some_and(|v4| net.contains(&v4)))
    }
}

/// None when the address is globally routable; otherwise the name of the range, e.g.
/// "loopback", "private (RFC 1918)". IPv6 transition addresses report the range of the
/// IPv4 address they carry.
pub fn non_global_reason(ip: IpAddr) -> Option<&'static str> {
    classify(ip).map(|(reason, _)| reason)
}

fn check_len(len: usize) -> Result<(), PolicyError> {
    if len > MAX_URL_LEN {
        return Err(PolicyError::TooLong { len });
    }
    Ok(())
}

fn classify(ip: IpAddr) -> Option<(&'static str, Option<Ipv4Addr>)> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4).map(|reason| (reason, None)),
        IpAddr::V6(v6) => v6_reason(v6).map(|reason| (reason, None)).or_else(|| {
            embedded_ipv4(v6)
                .into_iter()
                .find_map(|v4| v4_reason(v4).map(|reason| (reason, Some(v4))))
        }),
    }
}

// The ranges come from IANA's IPv4 and IPv6 Special-Purpose Address Registries as of 2024, with
// RFC 9637 (3fff::/20) and RFC 9602 (5f00::/16), plus multicast and the deprecated 6to4 relay
// anycast (RFC 7526) and site-local ranges. A block is refused here when no webhook can live
// there; 192.0.0.0/24 is refused whole, anycast exceptions included. Not refused as blocks:
// the rest of 2001::/23 (AMT 2001:3::/32 and AS112 are globally reachable; Teredo 2001::/32 and
// NAT64's 64:ff9b::/96 and 64:ff9b:1::/48 are judged by the IPv4 address they carry).
//
// Range names double as the noun in "is a {name} address"; see `article`.
fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let reason = match ip.octets() {
        [0, ..] => "\"this network\"",
        [10, ..] | [172, 16..=31, ..] | [192, 168, ..] => PRIVATE,
        [100, 64..=127, ..] => "carrier-grade NAT (RFC 6598)",
        [127, ..] => "loopback",
        [169, 254, ..] => "link-local",
        [192, 0, 0, _] => "IETF protocol assignment",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => DOCUMENTATION,
        [192, 88, 99, _] => "6to4 relay anycast (deprecated, RFC 7526)",
        [198, 18..=19, ..] => "benchmarking",
        [224..=239, ..] => "multicast",
        [255, 255, 255, 255] => "broadcast",
        [240..=255, ..] => "reserved",
        _ => return None,
    };
    Some(reason)
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let reason = match ip.segments() {
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback",
        [0x0100, 0, 0, 0, ..] => "discard-only",
        [0x2001, 0x0002, 0, ..] => "benchmarking",
        [0x2001, 0x0010..=0x002f, ..] => "ORCHID identifier",
        [0x2001, 0x0db8, ..] | [0x3fff, 0x0000..=0x0fff, ..] => DOCUMENTATION,
        [0x5f00, ..] => "segment-routing SID (RFC 9602)",
        [0xfc00..=0xfdff, ..] => "ULA (unique local)",
        [0xfe80..=0xfebf, ..] => "link-local",
        [0xfec0..=0xfeff, ..] => "site-local",
        [0xff00..=0xffff, ..] => "multicast",
        _ => return None,
    };
    Some(reason)
}

/// IPv4 addresses an IPv6 address carries under a transition mechanism. Packets to it can end
/// up at those IPv4 hosts, so each must be judged as if dialled directly.
fn embedded_ipv4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let join = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match ip.segments() {
        // IPv4-mapped, IPv4-translated (RFC 2765), IPv4-compatible. `::` and `::1` match the
        // last pattern too, but v6_reason has already refused them under their own names.
        [0, 0, 0, 0, 0, 0xffff, hi, lo]
        | [0, 0, 0, 0, 0xffff, 0, hi, lo]
        | [0, 0, 0, 0, 0, 0, hi, lo] => vec![join(hi, lo)],
        // 6to4: the relay forwards to the IPv4 in bits 16..48.
        [0x2002, hi, lo, ..] => vec![join(hi, lo)],
        // Teredo: server in bits 32..64, client obfuscated (inverted) in the last 32 bits.
        [0x2001, 0, shi, slo, _, _, chi, clo] => vec![join(shi, slo), join(!chi, !clo)],
        // NAT64 well-known (RFC 6052) and local-use (RFC 8215) prefixes. We assume the /96
        // layout; a local-use deployment with a shorter prefix places the IPv4 elsewhere.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] | [0x64, 0xff9b, 1, .., hi, lo] => vec![join(hi, lo)],
        _ => Vec::new(),
    }
}

fn article(name: &str) -> &'static str {
    // Good enough for the names above: "an unspecified", "an IETF", "an ORCHID", but "a ULA".
    match name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u' | 'I' | 'O') => "an",
        _ => "a",
    }
}

impl fmt::Display for AddressRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (ip, reason, a) = (self.ip, self.reason, article(self.reason));
        match self.embedded {
            Some(v4) => write!(f, "{ip} embeds IPv4 {v4}, which is {a} {reason} address"),
            None => write!(f, "{ip} is {a} {reason} address"),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "url is not a valid absolute URL: {e}"),
            Self::TooLong { len } => {
                write!(f, "url is longer than {MAX_URL_LEN} characters ({len})")
            }
            Self::SchemeNotAllowed { scheme, allowed } => {
                write!(f, "url must use {allowed}, not {scheme}")
            }
            Self::UserInfo => f.write_str("url must not contain user info"),
            Self::MissingHost => f.write_str("url must have a host"),
            Self::PortZero => f.write_str("url port must not be 0"),
            Self::AddressNotAllowed(refusal) => write!(f, "address not allowed: {refusal}"),
            Self::HostNotAllowed { host, refusal } => {
                write!(f, "url host {host} is not allowed: {refusal}")
            }
            Self::DoesNotResolve { host, error: None } => write!(f, "host {host} does not resolve"),
            Self::DoesNotResolve {
                host,
                error: Some(e),
            } => write!(f, "host {host} does not resolve: {e}"),
        }
    }
}

impl std::error::Error for PolicyError {}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: Option<&str> = None;

    fn policy(https_only: bool, allowed: &[&str]) -> UrlPolicy {
        let allowed_private = allowed
            .iter()
            .map(|n| n.parse().expect("test CIDR"))
            .collect();
        UrlPolicy {
            https_only,
            allowed_private,
        }
    }

    fn sock(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("test IP"), 443)
    }

    #[test]
    fn loggable_urls_keep_scheme_host_port_and_path_only() {
        for (raw, shown) in [
            (
                "https://hooks.example.com/crm/in?token=abc#x",
                "https://hooks.example.com/crm/in",
            ),
            (
                "https://[2001:db8::1]:8443/?k=v",
                "https://[2001:db8::1]:8443/",
            ),
            ("http://example.com", "http://example.com/"),
            ("not a url?token=abc", "<not a URL>"),
        ] {
            assert_eq!(loggable_url(raw), shown, "{raw}");
        }
    }

    /// Knows a few names and fails for the rest, so IP literals that pass prove they were
    /// never looked up.
    fn fake_resolve(host: &str, _port: u16) -> io::Result<Vec<SocketAddr>> {
        match host {
            "localhost" => Ok(vec![sock("127.0.0.1"), sock("::1")]),
            "example.com" => Ok(vec![sock("93.184.215.14"), sock("2606:2800:21f:cb07::1")]),
            "mixed.example" => Ok(vec![sock("93.184.215.14"), sock("10.0.0.1")]),
            "empty.example" => Ok(vec![]),
            _ => Err(io::Error::other("NXDOMAIN")),
        }
    }

    fn verdict(policy: &UrlPolicy, input: &str) -> Result<(), String> {
        policy
            .check_url(input, fake_resolve)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn assert_verdicts(policy: &UrlPolicy, cases: &[(&str, Option<&str>)]) {
        for &(input, expected) in cases {
            match (verdict(policy, input), expected) {
                (Ok(()), None) => {}
                (Err(msg), Some(want)) if msg.contains(want) => {}
                (got, _) => panic!("{input:.60}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[rustfmt::skip]
    const CASES: &[(&str, Option<&str>)] = &[
        ("https://8.8.8.8/", ALLOWED),
        ("https://1.1.1.1/", ALLOWED),
        ("https://[2606:4700:4700::1111]/", ALLOWED),
        ("https://127.0.0.1/", Some("127.0.0.1 is a loopback address")),
        ("https://127.255.255.255/", Some("loopback")),
        ("https://9.255.255.255/", ALLOWED),
        ("https://10.0.0.1/", Some(PRIVATE)),
        ("https://10.255.255.255/", Some(PRIVATE)),
        ("https://11.0.0.0/", ALLOWED),
        ("https://172.15.255.255/", ALLOWED),
        ("https://172.16.0.0/", Some(PRIVATE)),
        ("https://172.31.255.255/", Some(PRIVATE)),
        ("https://172.32.0.0/", ALLOWED),
        ("https://192.167.255.255/", ALLOWED),
        ("https://192.168.1.1/", Some(PRIVATE)),
        ("https://192.169.0.0/", ALLOWED),
        ("https://169.253.255.255/", ALLOWED),
        ("https://169.254.169.254/", Some("link-local")),
        ("https://169.255.0.0/", ALLOWED),
        ("https://100.63.255.255/", ALLOWED),
        ("https://100.64.0.0/", Some("carrier-grade NAT")),
        ("https://100.127.255.255/", Some("carrier-grade NAT")),
        ("https://100.128.0.0/", ALLOWED),
        ("https://0.0.0.0/", Some("\"this network\"")),
        ("https://0.255.255.255/", Some("\"this network\"")),
        ("https://192.0.0.8/", Some("an IETF protocol assignment")),
        ("https://192.0.1.0/", ALLOWED),
        ("https://198.17.255.255/", ALLOWED),
        ("https://198.18.0.0/", Some("benchmarking")),
        ("https://198.19.255.255/", Some("benchmarking")),
        ("https://198.20.0.0/", ALLOWED),
        ("https://192.0.2.1/", Some(DOCUMENTATION)),
        ("https://198.51.100.7/", Some(DOCUMENTATION)),
        ("https://203.0.113.255/", Some(DOCUMENTATION)),
        ("https://203.0.114.0/", ALLOWED),
        ("https://223.255.255.255/", ALLOWED),
        ("https://224.0.0.1/", Some("multicast")),
        ("https://239.255.255.255/", Some("multicast")),
        ("https://240.0.0.1/", Some("reserved")),
        ("https://255.255.255.254/", Some("reserved")),
        ("https://255.255.255.255/", Some("broadcast")),
        ("https://[::1]/", Some("::1 is a loopback address")),
        ("https://[::]/", Some("an unspecified address")),
        ("https://[::ffff:127.0.0.1]/", Some("embeds IPv4 127.0.0.1, which is a loopback")),
        ("https://[::ffff:7f00:1]/", Some("loopback")),
        ("https://[::ffff:8.8.8.8]/", ALLOWED),
        ("https://[::ffff:0:10.0.0.1]/", Some(PRIVATE)),
        ("https://[::127.0.0.1]/", Some("loopback")),
        ("https://[::0.0.0.2]/", Some("\"this network\"")),
        ("https://[2002:7f00:1::]/", Some("loopback")),
        ("https://[2002:0808:0808::]/", ALLOWED),
        // Teredo via public server 65.54.227.120: client 10.0.0.1, client 127.0.0.1, client
        // 8.8.8.8; then private server 10.0.0.1 with public client 8.8.8.8.
        ("https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", Some(PRIVATE)),
        ("https://[2001:0:4136:e378::80ff:fffe]/", Some("loopback")),
        ("https://[2001:0:4136:e378::f7f7:f7f7]/", ALLOWED),
        ("https://[2001:0:a00:1::f7f7:f7f7]/", Some(PRIVATE)),
        ("https://[64:ff9b::7f00:1]/", Some("loopback")),
        ("https://[64:ff9b::808:808]/", ALLOWED),
        ("https://[64:ff9b:1::a00:1]/", Some(PRIVATE)),
        ("https://[64:ff9b:1::808:808]/", ALLOWED),
        ("https://[fe80::1]/", Some("link-local")),
        ("https://[febf:ffff::1]/", Some("link-local")),
        ("https://[fec0::1]/", Some("site-local")),
        ("https://[fc00::1]/", Some("a ULA")),
        ("https://[fd12::1]/", Some("ULA")),
        ("https://[fbff:ffff::1]/", ALLOWED),
        ("https://[ff02::1]/", Some("multicast")),
        ("https://[2001:db8::1]/", Some(DOCUMENTATION)),
        ("https://[100::1]/", Some("discard-only")),
        ("https://[100:0:0:1::1]/", ALLOWED),
        // Names go through the resolver seam; a trailing dot, case or IDNA changes nothing.
        ("https://example.com/", ALLOWED),
        ("https://example.com:1/path?q=1#f", ALLOWED),
        ("https://localhost/", Some("url host localhost is not allowed: 127.0.0.1 is a loop")),
        ("https://localhost./", Some("loopback")),
        ("https://LOCALHOST/", Some("loopback")),
        ("https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", Some("loopback")),
        ("https://[::1]:8443/", Some("loopback")),
        ("https://mixed.example/", Some("10.0.0.1 is a private (RFC 1918) address")),
        ("https://empty.example/", Some("host empty.example does not resolve")),
        ("https://nxdomain.example/", Some("does not resolve: NXDOMAIN")),
        // The WHATWG parser normalises these IPv4 spellings to 127.0.0.1.
        ("https://2130706433/", Some("127.0.0.1 is a loopback")),
        ("https://0x7f.1/", Some("127.0.0.1 is a loopback")),
        ("https://0177.0.0.1/", Some("127.0.0.1 is a loopback")),
        ("https://127.1/", Some("127.0.0.1 is a loopback")),
        // Syntax.
        ("https://user:pass@example.com/", Some("url must not contain user info")),
        ("https://user@example.com/", Some("url must not contain user info")),
        ("https://:pass@example.com/", Some("url must not contain user info")),
        ("http://example.com/", Some("url must use https, not http")),
        ("ftp://example.com/", Some("url must use https")),
        ("javascript:alert(1)", Some("url must use https")),
        ("file:///etc/passwd", Some("url must use https")),
        ("/relative/path", Some("not a valid absolute URL")),
        ("", Some("not a valid absolute URL")),
        ("https://", Some("not a valid absolute URL")),
        ("https://exa mple.com/", Some("not a valid absolute URL")),
    ];

    #[test]
    fn verdicts_table() {
        assert_verdicts(&policy(true, &[]), CASES);

        let lax = [
            ("http://example.com/", ALLOWED),
            ("https://example.com/", ALLOWED),
            ("http://127.0.0.1/", Some("loopback")),
            (
                "ftp://example.com/",
                Some("url must use http or https, not ftp"),
            ),
        ];
        assert_verdicts(&policy(false, &[]), &lax);
    }

    #[test]
    fn length_limit_is_2048_characters() {
        let url_of_len = |len: usize| format!("https://example.com/{}", "a".repeat(len - 20));
        let strict = policy(true, &[]);
        assert_eq!(verdict(&strict, &url_of_len(2048)), Ok(()));
        assert_eq!(
            verdict(&strict, &url_of_len(2049)),
            Err("url is longer than 2048 characters (2049)".to_owned())
        );
        // 2000 typed characters, but each space becomes %20 in the URL we would send.
        let encoded = format!("https://example.com/{}", " x".repeat(990));
        assert!(verdict(&strict, &encoded).is_err_and(|e| e.contains("longer than 2048")));
    }

    #[test]
    fn parse_fills_target() {
        let strict = policy(true, &[]);
        let t = strict.parse("https://[::1]:8443/x").expect("valid");
        assert_eq!((t.host.as_str(), t.port), ("::1", 8443));
        assert_eq!(t.literal_ip(), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));

        let t = strict.parse("https://Example.COM./").expect("valid");
        assert_eq!((t.host.as_str(), t.port), ("example.com", 443));
        assert_eq!(t.url.as_str(), "https://example.com./");
        assert_eq!(t.literal_ip(), None);

        let t = policy(false, &[]).parse("http://0x7f.1/").expect("valid");
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 80));
        assert_eq!(strict.parse("https://./"), Err(PolicyError::MissingHost));
    }

    #[test]
    fn allowlist_admits_exactly_its_cidrs() {
        let p = policy(true, &["10.1.0.0/16", "fd00:1234::/32"]);
        let admitted = [
            "10.1.0.0",
            "10.1.255.255",
            "::ffff:10.1.2.3",
            "fd00:1234::",
            "fd00:1234:ffff:ffff:ffff:ffff:ffff:ffff",
            "8.8.8.8",
        ];
        let refused = [
            "10.0.255.255",
            "10.2.0.0",
            "::ffff:10.2.0.0",
            "64:ff9b::a01:203",
            "2002:a01:203::",
            "fd00:1233:ffff:ffff:ffff:ffff:ffff:ffff",
            "fd00:1235::",
            "127.0.0.1",
        ];
        for ip in admitted {
            assert_eq!(p.check_ip(ip.parse().expect("test IP")), Ok(()), "{ip}");
        }
        for ip in refused {
            assert!(p.check_ip(ip.parse().expect("test IP")).is_err(), "{ip}");
        }
    }

    #[test]
    fn allowing_loopback_v4_admits_nothing_else() {
        let p = policy(true, &["127.0.0.0/8"]);
        assert_eq!(p.check_ip("127.0.0.1".parse().expect("IP")), Ok(()));
        assert!(p.check_ip("10.0.0.1".parse().expect("IP")).is_err());
        assert!(p.check_ip("::1".parse().expect("IP")).is_err());
        // localhost also resolves to ::1, and every address must pass.
        assert_verdicts(&p, &[("https://localhost/", Some("::1 is a loopback"))]);
        assert_verdicts(&p, &[("https://127.0.0.1/", ALLOWED)]);
    }

    #[test]
    fn check_resolved_needs_every_address_to_pass() {
        let p = policy(true, &[]);
        assert_eq!(p.check_resolved("h", &[sock("8.8.8.8")]), Ok(()));
        let err = p.check_resolved("h", &[sock("8.8.8.8"), sock("::ffff:192.168.0.1")]);
        let refusal = AddressRefusal {
            ip: "::ffff:192.168.0.1".parse().expect("IP"),
            reason: PRIVATE,
            embedded: Some(Ipv4Addr::new(192, 168, 0, 1)),
        };
        let host = "h".to_owned();
        assert_eq!(err, Err(PolicyError::HostNotAllowed { host, refusal }));
        assert!(matches!(
            p.check_resolved("h", &[]),
            Err(PolicyError::DoesNotResolve { error: None, .. })
        ));
    }

    #[test]
    fn the_newer_special_purpose_ranges_and_port_zero_are_refused() {
        for (ip, reason) in [
            ("2001:2::1", "benchmarking"),
            ("2001:2:0:ffff::1", "benchmarking"),
            ("2001:10::1", "ORCHID identifier"),
            ("2001:2f:ffff::1", "ORCHID identifier"),
            ("3fff::1", DOCUMENTATION),
            ("3fff:fff:ffff::1", DOCUMENTATION),
            ("5f00::1", "segment-routing SID (RFC 9602)"),
            ("192.88.99.1", "6to4 relay anycast (deprecated, RFC 7526)"),
        ] {
            assert_eq!(
                non_global_reason(ip.parse().expect("IP")),
                Some(reason),
                "{ip}"
            );
        }
        // Just outside those blocks: global unicast.
        for ip in [
            "2001:3::1",
            "2001:30::1",
            "3fff:1000::1",
            "5f01::1",
            "192.88.100.1",
        ] {
            assert_eq!(non_global_reason(ip.parse().expect("IP")), None, "{ip}");
        }
        let policy = policy(true, &[]);
        assert_eq!(
            policy.parse("https://8.8.8.8:0/hook"),
            Err(PolicyError::PortZero)
        );
        assert!(policy.parse("https://8.8.8.8:1/hook").is_ok());
    }

    #[test]
    fn non_global_reason_names_the_range() {
        assert_eq!(non_global_reason("8.8.8.8".parse().expect("IP")), None);
        assert_eq!(
            non_global_reason("10.0.0.1".parse().expect("IP")),
            Some(PRIVATE)
        );
        assert_eq!(
            non_global_reason("64:ff9b::a9fe:a9fe".parse().expect("IP")),
            Some("link-local")
        );
    }
}
