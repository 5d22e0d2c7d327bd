//! Spec §14: `leadbase export` writes what the export route gives, offline.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

const RELAXED: [&str; 4] = [
    "limits.per_minute=1000000",
    "limits.per_hour=1000000",
    "limits.bulk_per_minute=1000000",
    "admin.token=test-admin-token-0123456789abcdef",
];

fn server(data: &Path) -> Served {
    serve(data, &RELAXED)
}

fn stop(mut server: Served) {
    server.sigterm();
    let exit = eventually("the server stops", Duration::from_secs(20), || {
        server.try_wait().ok_or_else(|| "still running".to_string())
    });
    assert!(exit.success(), "{exit:?}");
}

fn run(data: &Path, args: &[&str]) -> Output {
    leadbase(data).args(args).output().expect("runs")
}

/// `leadbase export`, which must succeed: its stdout.
fn export(data: &Path, tenant: &str, args: &[&str]) -> String {
    let out = run(data, &[&["export", "--tenant", tenant], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
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
    let by_route = |q: &str| {
        let res = source
            .client
            .api("GET", &format!("{LEADS}/export{q}"), &key)
            .send();
        assert_eq!(res.status, 200);
        res.text
    };
    let (jsonl, csv) = (by_route("?search=example.com"), by_route("?format=csv"));
    stop(source);
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
    let created = run_json(leadbase(&data).args(["tenant", "create", "--name", "Acme"]));
    let tenant = str_of(&created["tenant"]["id"]);
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
    stop(held);
}
