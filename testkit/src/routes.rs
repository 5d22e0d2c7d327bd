//! One method per route of the server, on [`Client`], each returning the [`Resp`] to check
//! with [`Resp::expect`]; and the fixtures built on them.

use serde_json::{Value, json};

use crate::app::ALL_SCOPES;
use crate::client::{BULK, Client, HOOKS, Key, LEADS, Resp};

impl Client {
    // Fixtures built on the routes.

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

    /// GET /admin/api/meta
    pub fn admin_meta(&self) -> Resp {
        self.admin("GET", "/admin/api/meta").send()
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

    /// PATCH /api/agents/crm/leads/{id} with `If-Match: if_match`.
    pub fn patch_lead_if(&self, key: &Key, id: &str, if_match: &str, body: &Value) -> Resp {
        self.api("PATCH", &format!("{LEADS}/{id}"), key)
            .header("if-match", if_match)
            .json(body)
            .send()
    }

    /// GET /api/agents/crm/events with a query string (`""` for none).
    pub fn list_events(&self, key: &Key, query: &str) -> Resp {
        self.api("GET", &format!("/api/agents/crm/events{query}"), key)
            .send()
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
