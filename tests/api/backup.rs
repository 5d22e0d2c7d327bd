//! Spec §14: `leadbase backup --to FILE` while 16 clients write leads: the snapshot is a state
//! that existed (whole leads, every index in step: `leadbase check` finds it clean), it opens
//! as a normal data file, and the live server lost nothing.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

fn backup(data: &Path, to: &Path, sets: &[String]) -> (bool, String) {
    let mut cmd = leadbase(data);
    for set in sets {
        cmd.arg("--set").arg(set);
    }
    let out = cmd
        .arg("backup")
        .arg("--to")
        .arg(to)
        .arg("--admin-token")
        .arg(ADMIN_TOKEN)
        .output()
        .expect("runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_backup_under_16_writers_is_a_state_that_existed_and_the_server_lost_nothing() {
    let app = TestApp::spawn_with(|c| {
        c.limits.per_minute = 1_000_000;
        c.limits.per_hour = 10_000_000;
    });
    let key = app.tenant_with_key("Acme");
    let out = tempfile::tempdir().unwrap();
    let snapshot = out.path().join("snapshot.redb");
    let listen = format!("server.listen={}", app.base().trim_start_matches("http://"));
    let acknowledged = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let (ok, printed) = std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let body = json!({
                        "contact_name": format!("Writer lead {i}"),
                        "contact_email": format!("w{i}@example.com"),
                        "contact_phone": format!("+1206{:07}", i),
                    });
                    let created = app.post_lead(&key, &body).expect(201);
                    let id = created["lead"]["id"].as_str().unwrap().to_string();
                    acknowledged.lock().unwrap().push(id);
                }
            });
        }
        std::thread::sleep(Duration::from_millis(1500));
        let taken = backup(&app.data_file(), &snapshot, std::slice::from_ref(&listen));
        let rest = Duration::from_secs(5).saturating_sub(started.elapsed());
        std::thread::sleep(rest);
        stop.store(true, Ordering::Relaxed);
        taken
    });
    assert!(ok, "the backup went through the server:\n{printed}");
    assert!(printed.contains("/admin/api/backup"), "{printed}");
    let acknowledged: Vec<String> = acknowledged.into_inner().unwrap();
    assert!(
        acknowledged.len() > 200,
        "the writers wrote ({})",
        acknowledged.len()
    );

    // The live server lost nothing.
    let total = app.list_leads(&key, "?limit=1").expect(200)["total"].clone();
    assert_eq!(total, acknowledged.len());

    // The snapshot is consistent: every record decodes and every index agrees with them.
    let check = leadbase(&snapshot).arg("check").output().expect("runs");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "the snapshot checks clean:\n{report}"
    );

    // It opens as a normal data file, holding some of the leads, all whole and all
    // acknowledged by the end, with the key that made them.
    let server = serve(&snapshot, &[format!("admin.token={ADMIN_TOKEN}").as_str()]);
    let page = server.client.list_leads(&key, "?limit=100").expect(200);
    let held = page["total"].as_u64().unwrap() as usize;
    assert!(
        held > 0 && held < acknowledged.len(),
        "a point in the middle: {held} of {}",
        acknowledged.len()
    );
    let known: HashSet<&str> = acknowledged.iter().map(String::as_str).collect();
    for lead in page["leads"].as_array().unwrap() {
        assert!(known.contains(lead["id"].as_str().unwrap()), "{lead}");
        assert!(
            lead["contact_email"].as_str().unwrap().starts_with('w'),
            "{lead}"
        );
        assert!(lead["contact_phone"].as_str().is_some(), "{lead}");
    }
    let found = server
        .client
        .list_leads(&key, "?search=writer%20lead&limit=1")
        .expect(200);
    assert_eq!(
        found["total"].as_u64().unwrap() as usize,
        held,
        "the indexes hold them all"
    );
}

#[test]
fn an_offline_backup_copies_the_file_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    let created = run_json(leadbase(&data).args(["tenant", "create", "--name", "Offline"]));
    let to = dir.path().join("copy.redb");
    let (ok, printed) = backup(&data, &to, &[]);
    assert!(ok, "{printed}");
    assert!(printed.contains("no server held it"), "{printed}");
    let tenants = run_json(leadbase(&to).args(["tenant", "list"]));
    assert_eq!(tenants["tenants"][0]["id"], created["tenant"]["id"]);
    let (ok, printed) = backup(&data, &to, &[]);
    assert!(!ok && printed.contains("exists"), "{printed}");
}
