//! A typed HTTP client for a leadbase server: one method per route, each returning a [`Resp`]
//! that the caller checks with [`Resp::expect`] (or [`Resp::assert_error`]), and a raw
//! [`Client::req`] for the requests a route method cannot make (odd headers, bodies, methods).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::app::{ADMIN_TOKEN, ALL_SCOPES};

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

    // -----------------------------------------------------------------------------------------
    // Fixtures built on the admin routes.

    /// A new tenant; returns its id.
    pub fn create_tenant(&self, name: &str) -> String {
        let body = self.post_tenant(&json!({ "name": name })).expect(201);
        body["tenant"]["id"].as_str().expect("id").to_string()
    }

    /// A key of `tenant` with these scopes.
    pub fn issue_key(&self, tenant: &str, scopes: &[&str]) -> Key {
        let body = self
            .post_key(tenant, &json!({ "name": "test", "scopes": scopes }))
            .expect(201);
        Key {
            id: body["key"]["id"].as_str().expect("id").into(),
            token: body["token"].as_str().expect("token").into(),
            tenant: tenant.into(),
        }
    }

    /// A tenant with one key holding every scope.
    pub fn tenant_with_key(&self, name: &str) -> Key {
        let tenant = self.create_tenant(name);
        self.issue_key(&tenant, &ALL_SCOPES)
    }

    /// A custom field `slug` of type `kind` (its name is the slug).
    pub fn add_custom_field(&self, tenant: &str, slug: &str, kind: &str) {
        self.post_custom_field(tenant, &json!({ "slug": slug, "name": slug, "type": kind }))
            .expect(201);
    }

    /// A 201 create-or-merge; returns the lead.
    pub fn create_lead(&self, key: &Key, body: Value) -> Value {
        self.post_lead(key, &body).expect(201)["lead"].clone()
    }

    /// A 200 PATCH of a lead, answered with only `lead`; returns the lead.
    pub fn update_lead(&self, key: &Key, id: &str, body: Value) -> Value {
        let body = self.patch_lead(key, id, &body).expect(200);
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(1),
            "only `lead`: {body}"
        );
        body["lead"].clone()
    }

    /// How many leads the tenant has.
    pub fn lead_total(&self, key: &Key) -> u64 {
        self.list_leads(key, "").expect(200)["total"]
            .as_u64()
            .expect("total")
    }

    // -----------------------------------------------------------------------------------------
    // Admin API.

    /// POST /admin/api/tenants
    pub fn post_tenant(&self, body: &Value) -> Resp {
        self.admin("POST", "/admin/api/tenants").json(body).send()
    }

    /// GET /admin/api/tenants
    pub fn list_tenants(&self) -> Resp {
        self.admin("GET", "/admin/api/tenants").send()
    }

    /// GET /admin/api/tenants/{id}
    pub fn get_tenant(&self, id: &str) -> Resp {
        self.admin("GET", &format!("/admin/api/tenants/{id}"))
            .send()
    }

    /// PATCH /admin/api/tenants/{id}
    pub fn patch_tenant(&self, id: &str, body: &Value) -> Resp {
        self.admin("PATCH", &format!("/admin/api/tenants/{id}"))
            .json(body)
            .send()
    }

    /// POST /admin/api/tenants/{id}/keys
    pub fn post_key(&self, tenant: &str, body: &Value) -> Resp {
        self.admin("POST", &format!("/admin/api/tenants/{tenant}/keys"))
            .json(body)
            .send()
    }

    /// GET /admin/api/tenants/{id}/keys
    pub fn list_keys(&self, tenant: &str) -> Resp {
        self.admin("GET", &format!("/admin/api/tenants/{tenant}/keys"))
            .send()
    }

    /// DELETE /admin/api/keys/{id}
    pub fn revoke_key(&self, id: &str) -> Resp {
        self.admin("DELETE", &format!("/admin/api/keys/{id}"))
            .send()
    }

    /// POST /admin/api/tenants/{id}/{kind}, where `kind` is `stages`, `custom-fields` or
    /// `owners` (the catalogue routes share their shape).
    fn post_catalog(&self, tenant: &str, kind: &str, body: &Value) -> Resp {
        self.admin("POST", &format!("/admin/api/tenants/{tenant}/{kind}"))
            .json(body)
            .send()
    }

    fn list_catalog(&self, tenant: &str, kind: &str) -> Resp {
        self.admin("GET", &format!("/admin/api/tenants/{tenant}/{kind}"))
            .send()
    }

    fn patch_catalog(&self, tenant: &str, kind: &str, id: &str, body: &Value) -> Resp {
        self.admin("PATCH", &format!("/admin/api/tenants/{tenant}/{kind}/{id}"))
            .json(body)
            .send()
    }

    fn delete_catalog(&self, tenant: &str, kind: &str, id: &str) -> Resp {
        self.admin(
            "DELETE",
            &format!("/admin/api/tenants/{tenant}/{kind}/{id}"),
        )
        .send()
    }

    /// POST /admin/api/tenants/{id}/stages
    pub fn post_stage(&self, tenant: &str, body: &Value) -> Resp {
        self.post_catalog(tenant, "stages", body)
    }

    /// GET /admin/api/tenants/{id}/stages
    pub fn list_stages(&self, tenant: &str) -> Resp {
        self.list_catalog(tenant, "stages")
    }

    /// PATCH /admin/api/tenants/{id}/stages/{stage}
    pub fn patch_stage(&self, tenant: &str, id: &str, body: &Value) -> Resp {
        self.patch_catalog(tenant, "stages", id, body)
    }

    /// DELETE /admin/api/tenants/{id}/stages/{stage}
    pub fn delete_stage(&self, tenant: &str, id: &str) -> Resp {
        self.delete_catalog(tenant, "stages", id)
    }

    /// POST /admin/api/tenants/{id}/custom-fields
    pub fn post_custom_field(&self, tenant: &str, body: &Value) -> Resp {
        self.post_catalog(tenant, "custom-fields", body)
    }

    /// GET /admin/api/tenants/{id}/custom-fields
    pub fn list_custom_fields(&self, tenant: &str) -> Resp {
        self.list_catalog(tenant, "custom-fields")
    }

    /// PATCH /admin/api/tenants/{id}/custom-fields/{field}
    pub fn patch_custom_field(&self, tenant: &str, id: &str, body: &Value) -> Resp {
        self.patch_catalog(tenant, "custom-fields", id, body)
    }

    /// DELETE /admin/api/tenants/{id}/custom-fields/{field}
    pub fn delete_custom_field(&self, tenant: &str, id: &str) -> Resp {
        self.delete_catalog(tenant, "custom-fields", id)
    }

    /// POST /admin/api/tenants/{id}/owners
    pub fn post_owner(&self, tenant: &str, body: &Value) -> Resp {
        self.post_catalog(tenant, "owners", body)
    }

    /// GET /admin/api/tenants/{id}/owners
    pub fn list_owners(&self, tenant: &str) -> Resp {
        self.list_catalog(tenant, "owners")
    }

    /// PATCH /admin/api/tenants/{id}/owners/{owner}
    pub fn patch_owner(&self, tenant: &str, id: &str, body: &Value) -> Resp {
        self.patch_catalog(tenant, "owners", id, body)
    }

    /// DELETE /admin/api/tenants/{id}/owners/{owner}
    pub fn delete_owner(&self, tenant: &str, id: &str) -> Resp {
        self.delete_catalog(tenant, "owners", id)
    }

    /// GET /admin/api/tenants/{id}/leads{query}; `query` is `""` or starts with `?`.
    pub fn admin_list_leads(&self, tenant: &str, query: &str) -> Resp {
        self.admin("GET", &format!("/admin/api/tenants/{tenant}/leads{query}"))
            .send()
    }

    /// GET /admin/api/tenants/{id}/webhooks
    pub fn admin_list_webhooks(&self, tenant: &str) -> Resp {
        self.admin("GET", &format!("/admin/api/tenants/{tenant}/webhooks"))
            .send()
    }

    /// GET /admin/api/tenants/{id}/webhooks/{webhook}/deliveries
    pub fn admin_list_deliveries(&self, tenant: &str, webhook: &str) -> Resp {
        self.admin(
            "GET",
            &format!("/admin/api/tenants/{tenant}/webhooks/{webhook}/deliveries"),
        )
        .send()
    }

    // -----------------------------------------------------------------------------------------
    // Leads.

    /// POST /api/agents/crm/leads (create or merge)
    pub fn post_lead(&self, key: &Key, body: &Value) -> Resp {
        self.api("POST", LEADS, key).json(body).send()
    }

    /// POST /api/agents/crm/leads with a JSON body sent exactly as written (key order included).
    pub fn post_lead_raw(&self, key: &Key, body: &str) -> Resp {
        self.api("POST", LEADS, key)
            .header("content-type", "application/json")
            .raw(body)
            .send()
    }

    /// GET /api/agents/crm/leads{query}; `query` is `""` or starts with `?`.
    pub fn list_leads(&self, key: &Key, query: &str) -> Resp {
        self.api("GET", &format!("{LEADS}{query}"), key).send()
    }

    /// GET /api/agents/crm/leads/{id}
    pub fn get_lead(&self, key: &Key, id: &str) -> Resp {
        self.api("GET", &format!("{LEADS}/{id}"), key).send()
    }

    /// PATCH /api/agents/crm/leads/{id}
    pub fn patch_lead(&self, key: &Key, id: &str, body: &Value) -> Resp {
        self.api("PATCH", &format!("{LEADS}/{id}"), key)
            .json(body)
            .send()
    }

    /// POST /api/agents/crm/leads/bulk
    pub fn bulk(&self, key: &Key, body: &Value) -> Resp {
        self.api("POST", BULK, key).json(body).send()
    }

    // -----------------------------------------------------------------------------------------
    // Webhooks and their deliveries.

    /// POST /api/agents/crm/lead-webhooks
    pub fn post_webhook(&self, key: &Key, body: &Value) -> Resp {
        self.api("POST", HOOKS, key).json(body).send()
    }

    /// GET /api/agents/crm/lead-webhooks
    pub fn list_webhooks(&self, key: &Key) -> Resp {
        self.api("GET", HOOKS, key).send()
    }

    /// GET /api/agents/crm/lead-webhooks/{id}
    pub fn get_webhook(&self, key: &Key, id: &str) -> Resp {
        self.api("GET", &format!("{HOOKS}/{id}"), key).send()
    }

    /// PATCH /api/agents/crm/lead-webhooks/{id}
    pub fn patch_webhook(&self, key: &Key, id: &str, body: &Value) -> Resp {
        self.api("PATCH", &format!("{HOOKS}/{id}"), key)
            .json(body)
            .send()
    }

    /// DELETE /api/agents/crm/lead-webhooks/{id}
    pub fn delete_webhook(&self, key: &Key, id: &str) -> Resp {
        self.api("DELETE", &format!("{HOOKS}/{id}"), key).send()
    }

    /// POST /api/agents/crm/lead-webhooks/{id}/rotate-secret, with a body or with none at all
    /// (no content type either).
    pub fn rotate_secret(&self, key: &Key, id: &str, body: Option<&Value>) -> Resp {
        let req = self.api("POST", &format!("{HOOKS}/{id}/rotate-secret"), key);
        match body {
            Some(body) => req.json(body).send(),
            None => req.send(),
        }
    }

    /// POST /api/agents/crm/lead-webhooks/{id}/test
    pub fn test_webhook(&self, key: &Key, id: &str) -> Resp {
        self.api("POST", &format!("{HOOKS}/{id}/test"), key).send()
    }

    /// GET /api/agents/crm/lead-webhooks/{id}/deliveries{query}; `query` is `""` or starts
    /// with `?`.
    pub fn list_deliveries(&self, key: &Key, webhook: &str, query: &str) -> Resp {
        self.api("GET", &format!("{HOOKS}/{webhook}/deliveries{query}"), key)
            .send()
    }

    /// GET /api/agents/crm/lead-webhooks/{id}/deliveries/{delivery_id}
    pub fn get_delivery(&self, key: &Key, webhook: &str, delivery: &str) -> Resp {
        self.api(
            "GET",
            &format!("{HOOKS}/{webhook}/deliveries/{delivery}"),
            key,
        )
        .send()
    }

    /// POST /api/agents/crm/lead-webhooks/{id}/deliveries/{delivery_id}/redeliver
    pub fn redeliver(&self, key: &Key, webhook: &str, delivery: &str) -> Resp {
        self.api(
            "POST",
            &format!("{HOOKS}/{webhook}/deliveries/{delivery}/redeliver"),
            key,
        )
        .send()
    }

    /// POST /api/agents/crm/lead-webhooks/{id}/recover
    pub fn recover(&self, key: &Key, webhook: &str, body: &Value) -> Resp {
        self.api("POST", &format!("{HOOKS}/{webhook}/recover"), key)
            .json(body)
            .send()
    }
}
