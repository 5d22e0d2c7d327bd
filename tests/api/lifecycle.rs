//! Process-level behaviour: restarts, the data-file lock, config errors, first start, signals
//! and the offline commands.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[test]
fn data_survives_a_restart() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key("Acme");
    let stage = app.post_stage(
        &key.tenant,
        &json!({ "slug": "showing", "name": "Showing" }),
    );
    assert_eq!(stage.status, 201);
    let app = app.restart();
    let tenants = app.list_tenants().expect(200);
    assert_eq!(tenants["tenants"][0]["id"], key.tenant.as_str());
    let stages = app.list_stages(&key.tenant).expect(200);
    assert_eq!(stages["stages"].as_array().unwrap().len(), 6);
    let keys = app.list_keys(&key.tenant).expect(200);
    assert_eq!(keys["keys"][0]["id"], key.id.as_str());
}

#[test]
fn a_second_process_is_refused_on_a_held_file() {
    let app = TestApp::spawn();
    let out = leadbase(&app.data_file())
        .args(["tenant", "list"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is in use by another process"), "{stderr}");

    let out = leadbase(&app.data_file())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is in use by another process"));
}

#[test]
fn invalid_config_is_refused_at_startup_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    let out = leadbase(&data)
        .env("LEADBASE_LIMITS_PER_MINUTE", "lots")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("LEADBASE_LIMITS_PER_MINUTE"), "{stderr}");

    let file = dir.path().join("leadbase.toml");
    std::fs::write(&file, "[webhooks]\ntimeout_seconds = 5\n").unwrap();
    let out = leadbase(&data)
        .arg("--config")
        .arg(&file)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("webhooks.timeout_seconds"));

    std::fs::write(&file, "[webhooks]\nretry_schedule_seconds = []\n").unwrap();
    let out = leadbase(&data)
        .arg("--config")
        .arg(&file)
        .args(["tenant", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("webhooks.retry_schedule_seconds"));
    assert!(!data.exists(), "nothing was created");
}

#[test]
fn first_start_creates_the_admin_token_and_says_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("leadbase.redb");
    let mut server = serve(&data, &[]);
    let (base, banner) = (&server.base, &server.banner);
    let token_file = dir.path().join("nested").join("admin-token");
    assert!(banner[1].contains(&format!("{base}/admin")), "{banner:?}");
    assert!(
        banner[1].contains(&token_file.display().to_string()),
        "{banner:?}"
    );
    assert!(banner[2].contains("First key"), "{banner:?}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let token = std::fs::read_to_string(&token_file).unwrap();
    server
        .client
        .req("GET", "/admin/api/tenants")
        .bearer(token.trim())
        .send()
        .expect(200);

    // SIGTERM: a graceful stop that exits cleanly and releases the file.
    server.sigterm();
    let exit = eventually(
        "the server stops on SIGTERM",
        Duration::from_secs(20),
        || server.try_wait().ok_or_else(|| "still running".to_string()),
    );
    assert!(exit.success(), "{exit:?}");

    // A second start reuses the token; the banner no longer says it was created.
    let mut again = serve(&data, &[]);
    let banner = &again.banner;
    assert!(banner[1].contains("admin token in"), "{banner:?}");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), token);
    again.sigkill();
}

#[test]
fn offline_commands_manage_tenants_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    let tenant = run_json(leadbase(&data).args(["tenant", "create", "--name", "Acme"]));
    let tenant_id = tenant["tenant"]["id"].as_str().unwrap().to_string();
    let list = run_json(leadbase(&data).args(["tenant", "list"]));
    assert_eq!(list["tenants"][0]["id"], tenant_id.as_str());

    let issued = run_json(leadbase(&data).args([
        "key",
        "issue",
        "--tenant",
        &tenant_id,
        "--scopes",
        "public_api:leads:read,public_api:webhooks:manage",
        "--name",
        "ci",
    ]));
    let token = issued["token"].as_str().unwrap().to_string();
    assert_eq!(
        issued["key"]["scopes"],
        json!(["public_api:leads:read", "public_api:webhooks:manage"])
    );
    let keys = run_json(leadbase(&data).args(["key", "list", "--tenant", &tenant_id]));
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    assert!(!keys.to_string().contains(&token[13..]));

    let out = leadbase(&data)
        .args(["key", "issue", "--tenant", &tenant_id, "--scopes", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scope"));

    let reset = leadbase(&data)
        .args(["admin-token", "reset"])
        .output()
        .unwrap();
    assert!(reset.status.success());
    let printed = String::from_utf8_lossy(&reset.stdout).trim().to_string();
    let stored = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    assert_eq!(printed, stored.trim());

    let key_id = issued["key"]["id"].as_str().unwrap();
    let revoked = run_json(leadbase(&data).args(["key", "revoke", key_id]));
    assert_eq!(revoked, json!({ "id": key_id, "revoked": true }));
}

/// The banner is printed only once the SIGTERM handler is in place: a signal sent the moment
/// it appears stops the server gracefully (exit 0) rather than killing it. Both processes
/// that print a banner are tried, several times, as a supervisor or a test would.
#[test]
fn sigterm_the_moment_the_banner_appears_is_a_graceful_stop() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    for _ in 0..5 {
        serve(&data, &[]).stop();
    }
    for _ in 0..5 {
        receive(
            "mega_whsec_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            "127.0.0.1:0",
        )
        .stop();
    }
}
