//! Spec §14: `leadbase check` finds a damaged index entry, `--repair` rebuilds it, and the
//! server then finds the lead by that index again.

use std::path::Path;
use std::process::Output;

use redb::{ReadableTable, TableDefinition};
use serde_json::json;

use crate::helpers::*;

fn check(data: &Path, repair: bool) -> (bool, String) {
    let mut cmd = leadbase(data);
    cmd.arg("check");
    if repair {
        cmd.arg("--repair");
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (status.success(), text)
}

#[test]
fn check_finds_a_removed_index_entry_and_repair_rebuilds_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    let admin = format!("admin.token={}", testkit::ADMIN_TOKEN);
    let server = serve(&data, &[admin.as_str()]);
    let key = server.client.tenant_with_key("Acme");
    for i in 0..30 {
        let body = json!({
            "contact_name": format!("Lead {i}"),
            "contact_email": format!("lead{i}@example.com"),
            "contact_phone": format!("(206) 555-{:04}", 1000 + i),
        });
        server.client.post_lead(&key, &body).expect(201);
    }
    let first = server
        .client
        .list_leads(&key, "?sort_by=created_at&limit=1")
        .expect(200)["leads"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .client
        .patch_lead(&key, &first, &json!({ "status": "won" }))
        .expect(200);
    server.stop();

    let (clean, out) = check(&data, false);
    assert!(clean, "a file the server wrote is clean:\n{out}");
    assert!(out.contains("checked 30 leads"), "{out}");

    // The damage, done to the file directly: one lead's e-mail entry, and its bit in the
    // `won` status set.
    {
        let db = redb::Database::open(&data).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let by_email: TableDefinition<&[u8], &[u8]> = TableDefinition::new("leads_by_email");
            let mut table = txn.open_table(by_email).unwrap();
            let k = table
                .iter()
                .unwrap()
                .map(|e| e.unwrap().0.value().to_vec())
                .find(|k| k.ends_with(b"lead7@example.com"))
                .expect("lead 7's entry");
            table.remove(k.as_slice()).unwrap();
            let terms: TableDefinition<&[u8], &[u8]> = TableDefinition::new("lead_terms");
            let mut table = txn.open_table(terms).unwrap();
            // (tenant, chunk 0, "s" + the code of `won`)
            let won = table
                .iter()
                .unwrap()
                .map(|e| e.unwrap().0.value().to_vec())
                .find(|k| k.len() == 22 && k[20] == b's' && k[21] == 1)
                .expect("the won set");
            table.remove(won.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }

    let (clean, out) = check(&data, false);
    assert!(!clean, "the damage is found:\n{out}");
    assert!(
        out.contains("PROBLEM leads by e-mail: 1 entries missing"),
        "{out}"
    );
    assert!(
        out.contains("PROBLEM lead filter and search sets: 1 entries missing"),
        "{out}"
    );
    assert!(
        out.contains("check --repair"),
        "the way out is named:\n{out}"
    );

    let (clean, out) = check(&data, true);
    assert!(clean, "repaired:\n{out}");
    assert!(
        out.contains("rebuilt the lead indexes from 30 lead records"),
        "{out}"
    );
    let (clean, out) = check(&data, false);
    assert!(clean, "clean after the repair:\n{out}");

    // The server uses the rebuilt indexes: lead 7 is matched by its e-mail again, and the won
    // lead is found by its status.
    let server = serve(&data, &[admin.as_str()]);
    let again = server
        .client
        .post_lead(
            &key,
            &json!({ "contact_email": "lead7@example.com", "contact_name": "Seven" }),
        )
        .expect(201);
    assert_eq!(again["merged"], true, "{again}");
    let won = server.client.list_leads(&key, "?status=won").expect(200);
    assert_eq!(won["total"], 1);
    assert_eq!(won["leads"][0]["id"], first.as_str());
    let total = server.client.list_leads(&key, "").expect(200)["total"].clone();
    assert_eq!(total, 30);
    server.stop();
}

#[test]
fn check_refuses_a_file_a_server_holds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    let server = serve(&data, &[]);
    let (clean, out) = check(&data, false);
    assert!(!clean);
    assert!(out.contains("held by a running server"), "{out}");
    server.stop();
}
