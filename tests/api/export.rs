//! Spec §12.3: the export, as JSON lines and as CSV read back by a real CSV parser (Python's
//! `csv` module), equal to what the pull API shows; filters honoured; bad input refused.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::helpers::*;

/// Parses CSV text with Python's `csv` module: the rows as arrays of strings.
fn python_csv(text: &str) -> Vec<Vec<String>> {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import csv, json, sys; print(json.dumps(list(csv.reader(sys.stdin, strict=True))))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python's csv refused it");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn export(app: &TestApp, key: &Key, q: &str) -> Resp {
    app.api("GET", &format!("{LEADS}/export{q}"), key).send()
}

/// The pull API's view of every lead, oldest first, with custom fields.
fn pulled(app: &TestApp, key: &Key, filters: &[(&str, &str)]) -> Vec<Value> {
    let mut params = vec![
        ("sort_by", "created_at"),
        ("include_custom_fields", "true"),
        ("limit", "100"),
    ];
    params.extend_from_slice(filters);
    app.list_leads(key, &query(&params)).expect(200)["leads"]
        .as_array()
        .unwrap()
        .clone()
}

fn tenant_with_leads(app: &TestApp) -> Key {
    let key = app.tenant_with_key("Acme");
    app.add_custom_field(&key.tenant, "budget", "number");
    app.add_custom_field(&key.tenant, "notes", "string");
    let rows = [
        json!({ "contact_name": "Ada, Countess", "contact_email": "ada@example.com", "custom_fields": { "budget": 250000, "notes": "said \"call me\"\nafter six" } }),
        json!({ "contact_name": "=HYPERLINK(\"http://x\")", "contact_phone": "(206) 555-0123", "lead_line": "buyer" }),
        json!({ "contact_name": "Grace", "contact_email": "grace@example.com", "custom_fields": { "notes": "@home" } }),
        json!({ "contact_name": "Plain Bob", "contact_email": "bob@example.com" }),
        json!({ "contact_name": "'Quoted", "contact_email": "quoted@example.com" }),
    ];
    for row in rows {
        app.create_lead(&key, row);
    }
    let grace = pulled(app, &key, &[("search", "grace")]);
    app.update_lead(
        &key,
        &id_of(&grace[0]),
        json!({ "status": "won", "score": -5 }),
    );
    key
}

#[test]
fn csv_reads_back_as_the_pull_api_shows_the_leads() {
    let app = TestApp::relaxed();
    let key = tenant_with_leads(&app);
    let res = export(&app, &key, "?format=csv");
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        res.header("content-disposition"),
        Some("attachment; filename=\"leads.csv\"")
    );
    let rows = python_csv(&res.text);
    let header = &rows[0];
    assert_eq!(header[0], "id");
    assert_eq!(header[12], "current_stage");
    let fields: Vec<&str> = header[17..].iter().map(String::as_str).collect();
    assert!(
        fields.contains(&"cf_budget") && fields.contains(&"cf_notes"),
        "{header:?}"
    );
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let leads = pulled(&app, &key, &[]);
    assert_eq!(rows.len() - 1, leads.len());
    for (row, lead) in rows[1..].iter().zip(&leads) {
        assert_eq!(row.len(), header.len());
        assert_eq!(row[col("id")], str_of(&lead["id"]));
        assert_eq!(row[col("status")], str_of(&lead["status"]));
        assert_eq!(
            row[col("current_stage")],
            str_of(&lead["current_stage"]["slug"])
        );
        assert_eq!(row[col("version")], lead["version"].to_string());
        assert_eq!(row[col("created_at")], str_of(&lead["created_at"]));
        let shown = |v: &Value| match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(
            row[col("score")],
            shown(&lead["score"]),
            "a plain -5 stays a number"
        );
        // Text a spreadsheet would run as a formula reads with a leading quote, and so does
        // text that starts with one (a leading quote is always the guard); nothing else
        // changes.
        let defused = |text: String| {
            let formula = text.starts_with(['=', '+', '-', '@'])
                && (text.parse::<f64>().is_err() || text.starts_with('+'));
            match formula || text.starts_with('\'') {
                true => format!("'{text}"),
                false => text,
            }
        };
        assert_eq!(
            row[col("contact_name")],
            defused(shown(&lead["contact_name"]))
        );
        assert_eq!(
            row[col("contact_phone")],
            defused(shown(&lead["contact_phone"]))
        );
        assert_eq!(row[col("contact_email")], shown(&lead["contact_email"]));
        for slug in ["budget", "notes", "lead_line"] {
            if let Some(i) = header.iter().position(|h| *h == format!("cf_{slug}")) {
                assert_eq!(
                    row[i],
                    defused(shown(&lead["custom_fields"][slug])),
                    "{slug}"
                );
            }
        }
    }
    assert!(res.text.contains("'=HYPERLINK"));
    assert!(res.text.contains("'+12065550123"));
    assert!(res.text.contains("''Quoted"));
}

#[test]
fn jsonl_is_one_lead_per_line_and_filters_are_honoured() {
    let app = TestApp::relaxed();
    let key = tenant_with_leads(&app);
    let res = export(&app, &key, "");
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = res
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, pulled(&app, &key, &[]));
    for (filters, q) in [
        (vec![("status", "won")], "?status=won"),
        (vec![("search", "example.com")], "?search=example.com"),
        (
            vec![("lead_line", "buyer")],
            "?format=jsonl&lead_line=buyer",
        ),
    ] {
        let got: Vec<Value> = export(&app, &key, q)
            .text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let want = pulled(&app, &key, &filters);
        assert!(!want.is_empty(), "{q}");
        assert_eq!(got, want, "{q}");
    }
    // Bad input: the envelope, like every pull query.
    export(&app, &key, "?format=xml").assert_error(400, "invalid_request_error");
    export(&app, &key, "?status=open").assert_error(400, "invalid_request_error");
    let reader = app.issue_key(&key.tenant, &["public_api:leads:write"]);
    export(&app, &reader, "").assert_error(403, "authorization_error");
}
