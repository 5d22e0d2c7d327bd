//! Spec §14: `leadbase export` writes what the export route gives, and `leadbase import` reads
//! it back into another file through the bulk rules, in 500-row transactions.
//!
//! What a round trip keeps: every field a client can write (contacts, sources, status, score,
//! qualified, stage, owner, custom fields and `lead_line`). What it cannot keep, because the
//! bulk rules make new leads: `id`, `customer_id`, `created_at`, `updated_at` and `version`,
//! the timeline (`interaction_count`, `last_interaction_at`), and the stage's and owner's ids,
//! which are the new tenant's own (owners are matched with `--owner-map`).

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::helpers::*;

fn server(data: &Path) -> Served {
    let admin = format!("admin.token={ADMIN_TOKEN}");
    serve(
        data,
        &[
            "limits.per_minute=1000000",
            "limits.per_hour=1000000",
            "limits.bulk_per_minute=1000000",
            &admin,
        ],
    )
}

fn run(data: &Path, args: &[&str]) -> Output {
    leadbase(data).args(args).output().expect("runs")
}

/// `leadbase export`, which must succeed: its stdout.
/// What the export route answers `key` for the query `q` (`?…`).
fn exported(server: &Served, key: &Key, q: &str) -> String {
    let res = server
        .client
        .api("GET", &format!("{LEADS}/export{q}"), key)
        .send();
    assert_eq!(res.status, 200);
    res.text
}

fn export(data: &Path, tenant: &str, args: &[&str]) -> String {
    let out = run(data, &[&["export", "--tenant", tenant], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// `leadbase import`: its exit code, its JSON summary, its stderr.
fn import(data: &Path, tenant: &str, file: &Path, extra: &[&str]) -> (i32, Value, String) {
    let mut cmd = leadbase(data);
    cmd.args(["import", "--tenant", tenant])
        .arg(file)
        .args(extra);
    let out = cmd.output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("a JSON summary ({e}); stderr: {stderr}"));
    (out.status.code().expect("exited"), summary, stderr)
}

/// `leadbase tenant create`, offline: the new tenant's id.
fn offline_tenant(data: &Path, name: &str) -> String {
    let created = run_json(leadbase(data).args(["tenant", "create", "--name", name]));
    str_of(&created["tenant"]["id"])
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// A lead without what a round trip cannot carry (see the module's comment); its owner's id
/// as `owners` maps it.
fn carried(mut lead: Value, owners: &HashMap<String, String>) -> Value {
    let object = lead.as_object_mut().expect("a lead");
    for field in [
        "id",
        "customer_id",
        "created_at",
        "updated_at",
        "version",
        "interaction_count",
        "last_interaction_at",
    ] {
        object.remove(field);
    }
    object["current_stage"]
        .as_object_mut()
        .expect("a stage")
        .remove("id");
    if let Some(owner) = object["owner"].as_object_mut() {
        let id = str_of(&owner["id"]);
        owner["id"] = json!(owners.get(&id).cloned().unwrap_or(id));
    }
    lead
}

/// The catalogue the leads use, made the same in every tenant: custom fields, a stage, two
/// owners (whose ids differ per tenant, by name here).
fn catalogue(client: &Client, tenant: &str) -> HashMap<String, String> {
    client.add_custom_field(tenant, "budget", "number");
    client.add_custom_field(tenant, "notes", "string");
    client.add_custom_field(tenant, "vip", "boolean");
    client
        .post_stage(
            tenant,
            &json!({ "slug": "toured", "name": "Toured", "color": "#aabbcc" }),
        )
        .expect(201);
    ["Sam Seller", "Bea Buyer"]
        .into_iter()
        .map(|name| {
            let owner = client
                .post_owner(tenant, &json!({ "name": name, "role_name": "agent" }))
                .expect(201);
            (name.to_string(), id_of(&owner["owner"]))
        })
        .collect()
}

const NOTES: [&str; 8] = [
    "said \"call me\", after six",
    "two\nlines",
    "crlf\r\ninside",
    "=SUM(A1:A9)",
    "-not a number",
    "'quoted already",
    "@home",
    "Zoë Ångström 王",
];

/// 620 leads: 600 through bulk (so an import needs two transactions), a few made one by one
/// with the awkward values, then statuses, scores and an interaction.
fn leads(client: &Client, key: &Key, owners: &HashMap<String, String>) {
    let stages = ["new", "contacted", "qualified", "toured", "won"];
    let owner_ids: Vec<&String> = owners.values().collect();
    for batch in 0..2 {
        let rows: Vec<Value> = (0..300)
            .map(|j| {
                let i = batch * 300 + j;
                let mut row = json!({
                    "contact_name": format!("Lead {i}, {}", ["Jr.", "\"Q\"", "Ünal"][i % 3]),
                    "stage_slug": stages[i % 5],
                    "source_platform": (["direct", "referral"][i % 2]),
                    "source_type": (["form", "chat", "sms"][i % 3]),
                    "custom_fields": { "budget": i * 1000, "notes": NOTES[i % 8], "vip": i % 2 == 0 },
                });
                if i % 4 != 3 {
                    row["contact_email"] = json!(format!("lead{i}@example.com"));
                }
                if i % 3 == 0 {
                    row["contact_phone"] = json!(format!("(206) 555-{:04}", i));
                }
                if i % 5 < 2 {
                    row["owner_id"] = json!(owner_ids[i % 2]);
                }
                if i % 7 < 2 {
                    row["lead_line"] = json!(["buyer", "seller"][i % 7]);
                }
                row
            })
            .collect();
        let done = client.bulk(key, &json!({ "leads": rows })).expect(200);
        assert_eq!(done["summary"]["created"], 300, "{}", done["summary"]);
    }
    let odd = [
        json!({ "contact_name": "=HYPERLINK(\"http://x\")", "contact_phone": "+44 20 7946 0958" }),
        json!({ "contact_name": "Short Phone", "contact_phone": "12345" }),
        json!({ "contact_name": "Only, a \"name\"" }),
        json!({ "contact_email": "ZOE@Example.COM", "contact_name": "Zoë Ångström 王", "custom_fields": { "budget": 2.5, "notes": "" } }),
        json!({ "contact_name": "'Quote first", "contact_email": "quote@example.com", "lead_line": "seller" }),
    ];
    for body in odd {
        client.create_lead(key, body);
    }
    let all = client
        .list_leads(key, "?sort_by=created_at&limit=40")
        .expect(200)["leads"]
        .as_array()
        .unwrap()
        .clone();
    for (n, lead) in all.iter().enumerate() {
        let patch = json!({
            "status": (["won", "lost", "nurture", "archived"][n % 4]),
            "score": ([json!(-5), json!(0), json!(87), Value::Null][n % 4]),
            "qualified": ([json!(true), json!(false), Value::Null][n % 3]),
        });
        client.update_lead(key, &id_of(lead), patch);
    }
    client
        .api(
            "POST",
            &format!("{LEADS}/{}/interactions", id_of(&all[0])),
            key,
        )
        .json(&json!({ "type": "call", "summary": "first call" }))
        .send()
        .expect(201);
}

#[test]
fn an_export_read_into_a_fresh_file_gives_the_same_leads_as_jsonl_and_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let (data, copy) = (dir.path().join("a.redb"), dir.path().join("b.redb"));
    let source = server(&data);
    let key = source.client.tenant_with_key("Acme");
    let owners = catalogue(&source.client, &key.tenant);
    leads(&source.client, &key, &owners);
    let by_route = |format: &str| exported(&source, &key, &format!("?format={format}"));
    let (route_jsonl, route_csv) = (by_route("jsonl"), by_route("csv"));
    source.stop();

    // The command writes the route's bytes.
    let jsonl = export(&data, &key.tenant, &[]);
    let csv = export(&data, &key.tenant, &["--format", "csv"]);
    assert_eq!(jsonl, route_jsonl);
    assert_eq!(csv, route_csv);
    let original = lines(&jsonl);
    assert_eq!(original.len(), 605);
    assert!(csv.contains("'=SUM(A1:A9)") && csv.contains("''quoted already"));

    // A fresh file: tenants made offline, their catalogue through a server on it.
    let into_jsonl = offline_tenant(&copy, "From JSON lines");
    let into_csv = offline_tenant(&copy, "From CSV");
    let target = server(&copy);
    let mapped: Vec<(String, HashMap<String, String>)> = [&into_jsonl, &into_csv]
        .into_iter()
        .map(|tenant| {
            let theirs = catalogue(&target.client, tenant);
            let map = owners
                .iter()
                .map(|(name, old)| (old.clone(), theirs[name].clone()))
                .collect();
            (tenant.clone(), map)
        })
        .collect();
    target.stop();

    for ((tenant, map), (file, text)) in mapped
        .iter()
        .zip([("leads.jsonl", &jsonl), ("leads.csv", &csv)])
    {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let owner_map: Vec<String> = map
            .iter()
            .map(|(old, new)| format!("{old}={new}"))
            .collect();
        let (code, summary, stderr) =
            import(&copy, tenant, &path, &["--owner-map", &owner_map.join(",")]);
        assert_eq!(code, 0, "{summary:#}\n{stderr}");
        assert_eq!(
            summary["summary"],
            json!({ "total": 605, "created": 605, "updated": 0, "skipped": 0, "failed": 0 }),
            "{file}"
        );
        assert!(
            stderr.contains("605 / 605 rows"),
            "a progress line: {stderr}"
        );
        let again = lines(&export(&copy, tenant, &[]));
        assert_eq!(again.len(), original.len());
        for (n, (before, after)) in original.iter().zip(&again).enumerate() {
            let (before, after) = (carried(before.clone(), map), carried(after.clone(), map));
            if file.ends_with(".csv") && before["custom_fields"]["notes"] == "" {
                // CSV has one way to write "" and "no value": read back, it is no value.
                let mut expected = before.clone();
                expected["custom_fields"]
                    .as_object_mut()
                    .unwrap()
                    .remove("notes");
                assert_eq!(after, expected, "{file}, lead {n}");
                continue;
            }
            assert_eq!(after, before, "{file}, lead {n}");
        }
    }
}

/// Writes a JSON-lines file of `n` leads.
fn jsonl_file(dir: &Path, name: &str, n: usize) -> std::path::PathBuf {
    let text: String = (0..n)
        .map(|i| {
            let row = json!({ "contact_name": format!("Row {i}"), "contact_email": format!("row{i}@example.com"), "status": "nurture" });
            format!("{row}\n")
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_dry_run_reports_what_would_happen_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    let tenant = offline_tenant(&data, "Acme");
    let file = jsonl_file(dir.path(), "rows.jsonl", 520);
    let (code, summary, stderr) = import(&data, &tenant, &file, &["--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["summary"]["created"], 520);
    assert!(stderr.contains("dry run"), "{stderr}");
    assert_eq!(export(&data, &tenant, &[]), "", "nothing was written");

    let (code, summary, _) = import(&data, &tenant, &file, &[]);
    assert_eq!(code, 0);
    assert_eq!(summary["summary"]["created"], 520);
    let leads = lines(&export(&data, &tenant, &[]));
    assert_eq!(leads.len(), 520);
    assert!(leads.iter().all(|l| l["status"] == "nurture"));
}

#[test]
fn bad_rows_are_reported_by_line_and_the_others_imported() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    let tenant = offline_tenant(&data, "Acme");
    let jsonl = dir.path().join("rows.jsonl");
    std::fs::write(
        &jsonl,
        [
            r#"{"contact_name": "Good one", "contact_email": "one@example.com"}"#,
            "",
            r#"{"contact_name": "Cut short""#,
            r#"{"source_platform": "direct"}"#,
            r#"{"contact_email": "nope", "status": "open"}"#,
            r#"{"contact_name": "No such stage", "current_stage": {"slug": "nowhere"}}"#,
            r#"["not", "an", "object"]"#,
            r#"{"contact_name": "Good two", "custom_fields": {"unknown": 1}}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let (code, summary, stderr) = import(&data, &tenant, &jsonl, &[]);
    assert_eq!(code, 1, "some rows failed: {stderr}");
    assert!(stderr.contains("5 of 7 rows failed"), "{stderr}");
    assert_eq!(
        summary["summary"],
        json!({ "total": 7, "created": 2, "updated": 0, "skipped": 0, "failed": 5 })
    );
    let failures = summary["failures"].as_array().unwrap();
    let failed_lines: Vec<u64> = failures
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert_eq!(failed_lines, [3, 4, 5, 6, 7]);
    let reasons = |line: usize| failures[line]["errors"].to_string();
    assert!(reasons(0).contains("not a JSON object"), "{}", reasons(0));
    assert!(
        reasons(1).contains("at least one of contact_name"),
        "{}",
        reasons(1)
    );
    assert!(
        reasons(2).contains("contact_email") && reasons(2).contains("status must be one of"),
        "{}",
        reasons(2)
    );
    assert!(
        reasons(3).contains("stage_slug `nowhere`"),
        "{}",
        reasons(3)
    );
    assert_eq!(summary["unknown_custom_fields"], json!(["unknown"]));
    let names: Vec<Value> = lines(&export(&data, &tenant, &[]))
        .into_iter()
        .map(|l| l["contact_name"].clone())
        .collect();
    assert_eq!(names, [json!("Good one"), json!("Good two")]);

    let csv = dir.path().join("rows.csv");
    std::fs::write(
        &csv,
        "contact_name,contact_email,score,colour\r\nThree,three@example.com,3,red\r\nFour,four@example.com\r\n\"Five, \"\"5\"\"\",five@example.com,high,blue\r\nSix,six@example.com,,\r\n",
    )
    .unwrap();
    let (code, summary, stderr) = import(&data, &tenant, &csv, &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("not read, no such field: colour"),
        "{stderr}"
    );
    assert_eq!(summary["ignored_columns"], json!(["colour"]));
    assert_eq!(summary["summary"]["created"], 2);
    assert_eq!(
        summary["failures"],
        json!([
            { "line": 3, "errors": ["the row has 2 cells, the header 4"] },
            { "line": 4, "errors": ["score must be a whole number (got \"high\")"] },
        ])
    );
}

#[test]
fn a_second_import_with_skip_reports_every_row_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    let tenant = offline_tenant(&data, "Acme");
    let file = jsonl_file(dir.path(), "rows.jsonl", 30);
    assert_eq!(import(&data, &tenant, &file, &[]).0, 0);
    let (code, summary, _) = import(&data, &tenant, &file, &["--on-duplicate", "skip"]);
    assert_eq!(code, 0);
    assert_eq!(summary["on_duplicate"], "skip");
    assert_eq!(
        summary["summary"],
        json!({ "total": 30, "created": 0, "updated": 0, "skipped": 30, "failed": 0 })
    );
    let (_, summary, _) = import(&data, &tenant, &file, &[]);
    assert_eq!(summary["summary"]["updated"], 30, "update is the default");
    assert_eq!(lines(&export(&data, &tenant, &[])).len(), 30);
}

#[test]
fn what_cannot_be_imported_is_refused_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    let tenant = offline_tenant(&data, "Acme");
    let file = jsonl_file(dir.path(), "rows.jsonl", 3);
    let refused = |args: &[&str], code: i32, says: &str| {
        let out = run(&data, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    };
    let path = file.to_str().unwrap();
    let unknown = "0190a000-0000-7000-8000-000000000001";
    refused(&["import", "--tenant", unknown, path], 1, "tenant 0190a000");
    refused(
        &["import", "--tenant", &tenant, "missing.jsonl"],
        1,
        "cannot read missing.jsonl",
    );
    let no_contacts = dir.path().join("other.csv");
    std::fs::write(&no_contacts, "a,b\n1,2\n").unwrap();
    refused(
        &["import", "--tenant", &tenant, no_contacts.to_str().unwrap()],
        1,
        "not an export of leads",
    );
    let open_quote = dir.path().join("open.csv");
    std::fs::write(&open_quote, "contact_name\nAda\n\"Bo\n").unwrap();
    refused(
        &["import", "--tenant", &tenant, open_quote.to_str().unwrap()],
        1,
        "line 3: a quoted cell is not closed",
    );
    refused(&["import", "--tenant", "acme", path], 2, "not a tenant id");
    refused(
        &["import", "--tenant", &tenant, path, "--owner-map", "x=y"],
        2,
        "--owner-map takes OLD=NEW",
    );
    let elsewhere = format!("{unknown}={unknown}");
    refused(
        &[
            "import",
            "--tenant",
            &tenant,
            path,
            "--owner-map",
            &elsewhere,
        ],
        1,
        "is not an owner of tenant",
    );
    refused(
        &[
            "import",
            "--tenant",
            &tenant,
            path,
            "--on-duplicate",
            "merge",
        ],
        2,
        "merge",
    );
    assert_eq!(export(&data, &tenant, &[]), "", "nothing was written");

    // Offline only: a running server holds the file.
    let held = server(&data);
    refused(
        &["import", "--tenant", &tenant, path],
        1,
        "in use by another process",
    );
    held.stop();
}

/// A tenant with a few leads of awkward values, on a server that is then stopped.
fn tenant_with_leads(data: &Path) -> (Key, String, String) {
    let source = server(data);
    let key = source.client.tenant_with_key("Acme");
    source
        .client
        .add_custom_field(&key.tenant, "notes", "string");
    for body in [
        json!({ "contact_name": "Ada, Countess", "contact_email": "ada@example.com", "custom_fields": { "notes": "said \"call me\"\nafter six" } }),
        json!({ "contact_name": "=HYPERLINK(\"http://x\")", "contact_phone": "(206) 555-0123", "lead_line": "buyer" }),
        json!({ "contact_name": "'Zoë Ångström 王", "contact_email": "zoe@example.com" }),
    ] {
        let lead = source.client.create_lead(&key, body);
        source
            .client
            .update_lead(&key, &id_of(&lead), json!({ "status": "won", "score": -5 }));
    }
    let (jsonl, csv) = (
        exported(&source, &key, "?search=example.com"),
        exported(&source, &key, "?format=csv"),
    );
    source.stop();
    (key, jsonl, csv)
}

#[test]
fn the_export_command_writes_the_bytes_the_route_gives() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    let (key, route_jsonl, route_csv) = tenant_with_leads(&data);
    assert_eq!(
        export(&data, &key.tenant, &["--search", "example.com"]),
        route_jsonl
    );
    assert_eq!(export(&data, &key.tenant, &["--format", "csv"]), route_csv);
    assert_eq!(route_jsonl.lines().count(), 2);
    assert!(route_csv.contains("''Zoë"));
}

#[test]
fn an_export_to_a_file_is_a_new_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    let (key, _, csv) = tenant_with_leads(&data);
    let out = dir.path().join("out.csv");
    let args = [
        "export",
        "--tenant",
        &key.tenant,
        "--format",
        "csv",
        "--out",
        out.to_str().unwrap(),
    ];
    let done = run(&data, &args);
    assert!(done.status.success());
    assert!(done.stdout.is_empty());
    assert!(String::from_utf8_lossy(&done.stderr).contains("export: 3 leads as csv"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), csv);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = run(&data, &args);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
}

#[test]
fn what_cannot_be_exported_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    let tenant = offline_tenant(&data, "Acme");
    let refused = |args: &[&str], code: i32, says: &str| {
        let out = run(&data, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    };
    let unknown = "0190a000-0000-7000-8000-000000000001";
    refused(&["export", "--tenant", unknown], 1, "not found");
    refused(&["export", "--tenant", "acme"], 2, "not a tenant id");
    refused(
        &["export", "--tenant", &tenant, "--status", "open"],
        2,
        "status must be one of",
    );
    refused(
        &["export", "--tenant", &tenant, "--format", "xml"],
        2,
        "xml",
    );
    assert_eq!(export(&data, &tenant, &[]), "", "a tenant without leads");

    // Offline only: a running server holds the file.
    let held = server(&data);
    refused(
        &["export", "--tenant", &tenant],
        1,
        "in use by another process",
    );
    held.stop();
}
