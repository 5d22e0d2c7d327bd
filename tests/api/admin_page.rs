//! The admin page end to end in a real headless Chromium (`tests/browser/admin.e2e.mjs`, driven
//! by playwright-core): the script signs in, makes a tenant and a key through the page, imports
//! a CSV, and runs two webhooks against the HTTPS receiver (one path answers 500); here the
//! server and the receiver run, and what the receiver got is checked after the script passed.

use std::path::Path;
use std::process::Command;

use crate::helpers::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// `npm ci` when the browser test's dependencies are not installed yet.
fn install_browser_deps(dir: &Path) {
    if dir.join("node_modules/playwright-core").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(dir)
        .status()
        .expect("npm runs (Node.js and npm are needed for the browser test)");
    assert!(
        status.success(),
        "npm ci --prefix {}: {status}",
        dir.display()
    );
}

#[test]
fn admin_page_runs_the_whole_story_in_headless_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the admin page's browser test needs Chromium \
         (.ci/run installs it: apt-get install chromium)"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/browser");
    install_browser_deps(&dir);
    let rx = Receiver::start();
    rx.set("/hooks/down", Behaviour::status(500).body("receiver down"));
    let app = TestApp::delivering_to(&rx);
    let out = Command::new("node")
        .arg(dir.join("admin.e2e.mjs"))
        .env("BASE", app.base())
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RECEIVER", rx.url("/hooks/e2e"))
        .env("RECEIVER_DOWN", rx.url("/hooks/down"))
        .env("OUT", root.join("target/browser"))
        .output()
        .expect("node runs");
    // Its step timings (shown with --nocapture, or above a failure).
    print!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "the browser test failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The test event, its redelivery and the lead held while paused, each signed.
    let got = rx.wait_for("/hooks/e2e", 3, ARRIVE);
    let events: Vec<String> = got
        .iter()
        .map(|r| r.must("x-mega-event").to_string())
        .collect();
    assert_eq!(events, ["webhook.test", "webhook.test", "lead.created"]);
    assert_eq!(
        got[0].delivery_id(),
        got[1].delivery_id(),
        "a redelivery keeps its id"
    );
    assert_eq!(got[2].json()["lead"]["contact_email"], "paused@e2e.test");
}
