//! Spec §12.1: deleting a lead, and erasure: after a delete no byte of the lead's personal data
//! is left in any table, and nothing sent afterwards carries it.

use std::path::Path;
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use serde_json::{Value, json};

use crate::helpers::*;

const EMAIL: &str = "erase.me@example.com";
const PHONE: &str = "+12065550199";
const NAME: &str = "Zebulon Erasable";
const NOTE: &str = "prefers calls after six, gate code 4411";

/// Every table of the data file (whatever its key and value types), as byte strings: the
/// tables a reader of the file could get anything out of. redb refuses to open a table with
/// the wrong types, so each is tried with the layouts leadbase uses until one fits.
fn every_entry(path: &Path) -> Vec<(String, Vec<u8>)> {
    let db = redb::Database::open(path).expect("the data file opens");
    let txn = db.begin_read().expect("a read");
    let mut out = Vec::new();
    for handle in txn.list_tables().expect("tables") {
        let name = handle.name().to_string();
        let bytes_bytes: TableDefinition<&[u8], &[u8]> = TableDefinition::new(&name);
        let bytes_unit: TableDefinition<&[u8], ()> = TableDefinition::new(&name);
        let bytes_u64: TableDefinition<&[u8], u64> = TableDefinition::new(&name);
        let bytes_u32: TableDefinition<&[u8], u32> = TableDefinition::new(&name);
        let str_bytes: TableDefinition<&str, &[u8]> = TableDefinition::new(&name);
        let mut push = |k: &[u8], v: &[u8]| {
            let mut entry = k.to_vec();
            entry.extend_from_slice(v);
            out.push((name.clone(), entry));
        };
        if let Ok(t) = txn.open_table(bytes_bytes) {
            for e in t.iter().unwrap() {
                let (k, v) = e.unwrap();
                push(k.value(), v.value());
            }
        } else if let Ok(t) = txn.open_table(bytes_unit) {
            for e in t.iter().unwrap() {
                push(e.unwrap().0.value(), &[]);
            }
        } else if let Ok(t) = txn.open_table(bytes_u64) {
            for e in t.iter().unwrap() {
                let (k, v) = e.unwrap();
                push(k.value(), &v.value().to_be_bytes());
            }
        } else if let Ok(t) = txn.open_table(bytes_u32) {
            for e in t.iter().unwrap() {
                let (k, v) = e.unwrap();
                push(k.value(), &v.value().to_be_bytes());
            }
        } else if let Ok(t) = txn.open_table(str_bytes) {
            for e in t.iter().unwrap() {
                let (k, v) = e.unwrap();
                push(k.value().as_bytes(), v.value());
            }
        } else {
            panic!("table {name} has a layout this test does not read: add it");
        }
    }
    out
}

fn tables_holding(entries: &[(String, Vec<u8>)], needle: &str) -> Vec<String> {
    let needle = needle.as_bytes();
    let mut tables: Vec<String> = entries
        .iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
        .map(|(name, _)| name.clone())
        .collect();
    tables.dedup();
    tables
}

#[test]
fn a_deleted_lead_leaves_no_personal_data_in_any_table_and_its_events_arrive_erased() {
    let env = DeliveryEnv::start();
    env.app
        .add_custom_field(&env.key.tenant, "budget", "number");
    let all = json!(["lead.created", "lead.updated", "lead.deleted"]);
    let live = env.hook("/live", json!({ "event_types": all }));
    // A paused webhook holds the lead's events: they are owed, not yet delivered, when the
    // lead is deleted.
    let paused = env.hook("/paused", json!({ "event_types": all, "is_active": false }));
    let created = env
        .app
        .idempotent("create-zeb")
        .post_lead(
            &env.key,
            &json!({ "contact_name": NAME, "contact_email": EMAIL, "contact_phone": "(206) 555-0199", "custom_fields": { "budget": 777777 } }),
        )
        .expect(201);
    let id = id_of(&created["lead"]);
    env.app.update_lead(
        &env.key,
        &id,
        json!({ "contact_name": "Zeb E.", "status": "won" }),
    );
    env.app
        .api("POST", &format!("{LEADS}/{id}/interactions"), &env.key)
        .json(&json!({ "type": "note", "body": NOTE }))
        .send()
        .expect(201);
    env.rx.wait_for("/live", 2, ARRIVE);
    assert_eq!(env.webhook(&paused)["held_count"], 2);

    // A stale If-Match changes nothing.
    env.app
        .api("DELETE", &format!("{LEADS}/{id}"), &env.key)
        .header("if-match", "\"1\"")
        .send()
        .assert_error(412, "api_error");
    assert_eq!(env.app.get_lead(&env.key, &id).status, 200);

    let keyed = env.app.idempotent("delete-zeb");
    let delete = || {
        keyed
            .api("DELETE", &format!("{LEADS}/{id}"), &env.key)
            .header("if-match", "\"3\"")
            .send()
    };
    assert_eq!(delete().expect(200), json!({ "id": id, "deleted": true }));
    let again = delete();
    assert_eq!(again.expect(200), json!({ "id": id, "deleted": true }));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    env.app
        .get_lead(&env.key, &id)
        .assert_error(404, "not_found_error");
    env.app
        .api("DELETE", &format!("{LEADS}/{id}"), &env.key)
        .send()
        .assert_error(404, "not_found_error");

    // lead.deleted arrives with the id, version and time only.
    let deleted = env.rx.wait_for("/live", 3, ARRIVE).remove(2).json();
    env.app
        .api("GET", &format!("{LEADS}/{id}/interactions"), &env.key)
        .send()
        .assert_error(404, "not_found_error");
    assert_eq!(deleted["event"], "lead.deleted");
    assert_eq!(
        keys(&deleted["lead"]),
        set_of(&["id", "version", "deleted_at"])
    );
    assert_eq!(deleted["lead"]["id"], id.as_str());
    assert_eq!(deleted["lead"]["version"], 3);

    // The held events, sent now, are erased; so is the event log.
    env.app
        .patch_webhook(&env.key, &paused.id, &json!({ "is_active": true }))
        .expect(200);
    let owed = env.rx.wait_for("/paused", 3, ARRIVE);
    for req in &owed {
        let body = String::from_utf8_lossy(&req.body).to_string();
        for secret in [EMAIL, PHONE, NAME, "Zeb E.", "777777", NOTE] {
            assert!(!body.contains(secret), "{secret} in {body}");
        }
    }
    let erased: Vec<Value> = owed
        .iter()
        .map(|r| r.json())
        .filter(|b| b["event"] != "lead.deleted")
        .collect();
    assert_eq!(erased.len(), 2);
    for body in &erased {
        assert_eq!(body["lead"], json!({ "id": id, "erased": true }), "{body}");
        assert!(body.get("previous").is_none());
    }
    // Released together, they may arrive in either order: the update keeps its field names.
    let update = erased
        .iter()
        .find(|b| b["event"] == "lead.updated")
        .expect("the update");
    assert_eq!(update["changed_fields"], json!(["contact_name", "status"]));
    let log = env
        .app
        .list_events(&env.key, &query(&[("lead_id", &id)]))
        .expect(200);
    let log_text = log.to_string();
    assert_eq!(log["events"].as_array().unwrap().len(), 4, "{log}");
    for secret in [EMAIL, PHONE, NAME] {
        assert!(
            !log_text.contains(secret),
            "{secret} in the log: {log_text}"
        );
    }
    // A replay of the create shows the lead erased, and the email is free again.
    let replay = env
        .app
        .idempotent("create-zeb")
        .post_lead(
            &env.key,
            &json!({ "contact_name": NAME, "contact_email": EMAIL, "contact_phone": "(206) 555-0199", "custom_fields": { "budget": 777777 } }),
        );
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json()["lead"], json!({ "id": id, "erased": true }));
    env.all_final(&live);
    env.all_final(&paused);
    let fresh = env.lead(json!({ "contact_email": EMAIL }));
    assert_ne!(
        fresh["id"],
        id.as_str(),
        "a new lead, not a merge into the deleted one"
    );

    // Offline: every entry of every table, read through redb, holds none of it. (A new lead
    // now has the email: look for the name and phone, and the email only outside the new
    // lead's own records.)
    let dir = Arc::clone(&env.app.dir);
    let path = env.app.data_file();
    drop(env);
    let entries = every_entry(&path);
    assert!(
        entries.len() > 20,
        "the scan reads the file: {} entries",
        entries.len()
    );
    for secret in [NAME, PHONE, "Zeb E.", "777777", NOTE] {
        assert_eq!(
            tables_holding(&entries, secret),
            Vec::<String>::new(),
            "{secret}"
        );
    }
    let old_id_with_email: Vec<_> = entries
        .iter()
        .filter(|(_, b)| {
            let text = String::from_utf8_lossy(b);
            text.contains(EMAIL) && text.contains(&id)
        })
        .map(|(t, _)| t.clone())
        .collect();
    assert!(old_id_with_email.is_empty(), "{old_id_with_email:?}");
    drop(dir);
}

#[test]
fn deleting_another_tenants_lead_is_404_and_changes_nothing() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let other = app.tenant_with_key("Other");
    let id = id_of(&app.create_lead(&key, json!({ "contact_email": "ada@example.com" })));
    app.api("DELETE", &format!("{LEADS}/{id}"), &other)
        .send()
        .assert_error(404, "not_found_error");
    app.api("DELETE", &format!("{LEADS}/not-a-uuid"), &key)
        .send()
        .assert_error(404, "not_found_error");
    let lead = app.get_lead(&key, &id).expect(200)["lead"].clone();
    assert_eq!(lead["version"], 1);
    assert_eq!(app.lead_total(&key), 1);
    let log = app.list_events(&key, "").expect(200);
    assert_eq!(
        log["events"].as_array().unwrap().len(),
        1,
        "no lead.deleted: {log}"
    );
    // Only leads:write may delete.
    let reader = app.issue_key(&key.tenant, &["public_api:leads:read"]);
    app.api("DELETE", &format!("{LEADS}/{id}"), &reader)
        .send()
        .assert_error(403, "authorization_error");
}
