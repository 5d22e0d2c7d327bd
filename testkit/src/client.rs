//! A typed HTTP client for a leadbase server: [`Client::req`] (and its `admin`/`api` forms)
//! builds any request; the route methods (in `routes.rs`) build on it. A [`Resp`] is checked
//! with [`Resp::expect`] or [`Resp::assert_error`].

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::app::ADMIN_TOKEN;

pub const LEADS: &str = "/api/agents/crm/leads";
pub const BULK: &str = "/api/agents/crm/leads/bulk";
pub const HOOKS: &str = "/api/agents/crm/lead-webhooks";

/// An HTTP agent that hands every status back as a response and never follows a redirect.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// An API key as the admin API issued it, with the tenant it is sent for (`X-Customer-Id`).
#[derive(Clone, Debug)]
pub struct Key {
    pub id: String,
    pub token: String,
    pub tenant: String,
}

impl Key {
    /// The same key sent on behalf of another tenant.
    pub fn for_tenant(&self, tenant: &str) -> Key {
        Key {
            tenant: tenant.into(),
            ..self.clone()
        }
    }
}

/// A response, read whole.
pub struct Resp {
    /// `METHOD path`, for failure messages.
    pub request: String,
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub text: String,
}

impl Resp {
    /// Asserts the status (showing the body when it is another) and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "{}: expected {status}, got {}: {}",
            self.request, self.status, self.text
        );
        self.json()
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", self.request, self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Asserts the spec's error envelope with this status and type; returns the message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, kind: &str) -> String {
        assert_eq!(self.status, status, "{}: {}", self.request, self.text);
        let body = self.json();
        assert_eq!(body["error"]["type"], kind, "body: {}", self.text);
        assert_eq!(body["error"]["code"], status, "body: {}", self.text);
        let message = body["error"]["message"]
            .as_str()
            .expect("message")
            .to_string();
        assert!(!message.is_empty());
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(1),
            "only `error` at the top"
        );
        message
    }
}

/// A request being built; [`Req::send`] makes it.
pub struct Req<'a> {
    client: &'a Client,
    method: &'a str,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Req<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string());
        self.header("content-type", "application/json")
    }

    /// A body as given, without a content type.
    pub fn raw(mut self, body: &str) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn send(self) -> Resp {
        let mut builder = ureq::http::Request::builder()
            .method(self.method)
            .uri(format!("{}{}", self.client.base, self.path));
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(self.body.unwrap_or_default())
            .expect("request");
        let mut response = self.client.agent.run(request).expect("HTTP exchange");
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Resp {
            request: format!("{} {}", self.method, self.path),
            status,
            headers,
            text,
        }
    }
}

/// Speaks HTTP to one server: an in-process [`crate::TestApp`] or a `leadbase serve` child.
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
    /// Sent with every request (an `Idempotency-Key`, say).
    headers: Vec<(String, String)>,
}

impl Client {
    /// A client of the server at `base` (`http://host:port`, no trailing slash).
    pub fn new(base: impl Into<String>) -> Client {
        Client {
            base: base.into(),
            agent: agent(),
            headers: Vec::new(),
        }
    }

    /// The same server, spoken to through `agent`.
    pub fn with_agent(self, agent: ureq::Agent) -> Client {
        Client { agent, ..self }
    }

    /// The same client, sending `Idempotency-Key: key` with every request.
    pub fn idempotent(&self, key: &str) -> Client {
        let mut client = self.clone();
        client.headers.push(("idempotency-key".into(), key.into()));
        client
    }

    /// `http://host:port`.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn req(&self, method: &'static str, path: &str) -> Req<'_> {
        Req {
            client: self,
            method,
            path: path.to_string(),
            headers: self.headers.clone(),
            body: None,
        }
    }

    /// A request with the admin token.
    pub fn admin(&self, method: &'static str, path: &str) -> Req<'_> {
        self.req(method, path).bearer(ADMIN_TOKEN)
    }

    /// An API call as `key`, for its tenant.
    pub fn api(&self, method: &'static str, path: &str, key: &Key) -> Req<'_> {
        self.req(method, path)
            .bearer(&key.token)
            .header("x-customer-id", &key.tenant)
    }
}
