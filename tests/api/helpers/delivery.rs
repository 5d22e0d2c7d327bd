//! The webhook-delivery fixture: a real HTTPS [`Receiver`], a server delivering to it
//! ([`TestApp::delivering_to`]) and a tenant with a key, plus the waits a delivery test needs.
//! Nothing here sleeps for a fixed time: every wait ends when the delivery log or the receiver
//! shows what it waits for.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::receiver::Receiver;
use testkit::{Key, TestApp};

use super::{eventually, str_of};

/// How long a delivery that should arrive may take (it normally takes milliseconds).
pub const ARRIVE: Duration = Duration::from_secs(5);

/// The server is declared first so that it stops before the receiver goes.
pub struct DeliveryEnv {
    pub app: TestApp,
    pub key: Key,
    pub rx: Receiver,
}

/// A registered webhook: its id and its signing secret.
pub struct Hook {
    pub id: String,
    pub secret: String,
}

impl Hook {
    /// From a 201 registration's body.
    pub fn from_created(body: &Value) -> Hook {
        Hook {
            id: str_of(&body["webhook"]["id"]),
            secret: str_of(&body["secret"]),
        }
    }
}

/// Whether a delivery will be attempted no more (unless asked to: redeliver, recover).
fn is_final(delivery: &Value) -> bool {
    ["delivered", "failed", "cancelled"].contains(&delivery["status"].as_str().unwrap_or(""))
}

impl DeliveryEnv {
    /// A receiver, a server delivering to it, and the tenant "Acme" with every scope.
    pub fn start() -> DeliveryEnv {
        let rx = Receiver::start();
        let app = TestApp::delivering_to(&rx);
        let key = app.tenant_with_key("Acme");
        DeliveryEnv { app, key, rx }
    }

    /// As [`DeliveryEnv::start`], with attempts made only by [`TestApp::deliver_due`].
    pub fn on_demand() -> DeliveryEnv {
        let rx = Receiver::start();
        let app = TestApp::delivering_on_demand_to(&rx);
        let key = app.tenant_with_key("Acme");
        DeliveryEnv { app, key, rx }
    }

    /// The fixture around a server of the test's own (with a name lookup, say).
    pub fn around(app: TestApp, rx: Receiver) -> DeliveryEnv {
        let key = app.tenant_with_key("Acme");
        DeliveryEnv { app, key, rx }
    }

    /// Registers a webhook for `path` on the receiver; `settings` adds to `{url}`.
    pub fn hook(&self, path: &str, settings: Value) -> Hook {
        self.hook_for(&self.key, path, settings)
    }

    /// [`DeliveryEnv::hook`] for another tenant's key.
    pub fn hook_for(&self, key: &Key, path: &str, settings: Value) -> Hook {
        let mut body = json!({ "url": self.rx.url(path) });
        for (k, v) in settings.as_object().expect("settings object") {
            body[k] = v.clone();
        }
        Hook::from_created(&self.app.post_webhook(key, &body).expect(201))
    }

    /// POST /leads (create or merge); returns the whole 201 body.
    pub fn push(&self, body: Value) -> Value {
        self.app.post_lead(&self.key, &body).expect(201)
    }

    /// Creates a lead; returns it.
    pub fn lead(&self, body: Value) -> Value {
        let out = self.push(body);
        assert_eq!(out["merged"], false, "a new lead: {out}");
        out["lead"].clone()
    }

    pub fn webhook(&self, hook: &Hook) -> Value {
        self.app.get_webhook(&self.key, &hook.id).expect(200)["webhook"].clone()
    }

    /// The delivery log with a query string (`""` for none): `{data, next_cursor}`.
    pub fn deliveries(&self, hook: &Hook, query: &str) -> Value {
        self.app
            .list_deliveries(&self.key, &hook.id, query)
            .expect(200)
    }

    /// One delivery: `{delivery, attempts}`.
    pub fn delivery(&self, hook: &Hook, id: &str) -> Value {
        self.app.get_delivery(&self.key, &hook.id, id).expect(200)
    }

    /// Waits until the delivery has reached `status` (the receiver sees a request before the
    /// server records its outcome); returns `{delivery, attempts}`.
    pub fn settled(&self, hook: &Hook, id: &str, status: &str) -> Value {
        eventually(&format!("delivery {id} {status}"), ARRIVE, || {
            let out = self.delivery(hook, id);
            if out["delivery"]["status"] == status {
                Ok(out)
            } else {
                Err(out.to_string())
            }
        })
    }

    /// Waits until every delivery in the webhook's log is final (delivered or failed) and
    /// returns them, newest first. The outbox is written in the lead's own commit, so the log
    /// already holds every delivery queued so far; once they are all final, the receiver has
    /// seen every attempt it ever will, and its count can be asserted at once.
    pub fn all_final(&self, hook: &Hook) -> Vec<Value> {
        eventually(
            &format!("every delivery of webhook {} final", hook.id),
            ARRIVE,
            || {
                let out = self.deliveries(hook, "?limit=100");
                let data = out["data"].as_array().expect("data").clone();
                if out["next_cursor"].is_null() && data.iter().all(is_final) {
                    Ok(data)
                } else {
                    Err(out.to_string())
                }
            },
        )
    }

    /// Asserts that nothing was queued for the webhook: its delivery log is empty. Queuing
    /// happens in the commit that made the event, so this needs no wait.
    pub fn assert_nothing_queued(&self, key: &Key, hook: &Hook, why: &str) {
        let out = self.app.list_deliveries(key, &hook.id, "").expect(200);
        assert_eq!(out["data"], json!([]), "{why}: {out}");
    }
}
