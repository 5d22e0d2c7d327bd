//! A slow, dead or backlogged receiver costs its own webhook and at most its tenant's share of
//! the delivery threads, never another tenant's deliveries.

use std::thread;
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

/// Accepts the request and answers long after any webhook timeout: a tarpit.
fn tarpit() -> Behaviour {
    Behaviour::status(200).after_ms(60_000)
}

/// How long another tenant's delivery may take when the engine keeps tenants apart: it takes
/// milliseconds, while the tarpits hold their attempts for 3 s (and an engine that lets them
/// starve everyone keeps it waiting at least that long).
const PROMPT: Duration = Duration::from_millis(2_000);

/// A second tenant's lead reaches its receiver within [`PROMPT`] (`wait_for` panics if not).
fn assert_another_tenant_is_delivered_promptly(env: &DeliveryEnv) {
    let other = env.app.tenant_with_key("Beta");
    env.rx.set("/fast", Behaviour::status(204));
    env.hook_for(&other, "/fast", json!({}));
    env.app
        .post_lead(&other, &json!({ "contact_name": "Grace" }))
        .expect(201);
    env.rx.wait_for("/fast", 1, PROMPT);
}

#[test]
fn a_backlog_for_a_slow_webhook_does_not_hold_back_another_tenant() {
    let env = DeliveryEnv::start();
    env.rx.set("/tarpit", tarpit());
    let slow = env.hook(
        "/tarpit",
        json!({ "timeout_seconds": 3, "retry_attempts": 0, "event_types": ["lead.created"] }),
    );
    // More due deliveries for the slow webhook than one lease ever used to look at (2,000),
    // queued from several clients at once.
    let queued: usize = thread::scope(|s| {
        let workers: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    (0..132)
                        .filter(|_| env.app.test_webhook(&env.key, &slow.id).status == 202)
                        .count()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert_eq!(queued, 16 * 132);

    assert_another_tenant_is_delivered_promptly(&env);
}

#[test]
fn one_tenant_s_slow_receivers_leave_threads_for_the_others() {
    let rx = Receiver::start();
    // The server's own thread and in-flight defaults, which this test is about.
    let app = TestApp::spawn_with(|c| {
        relax_limits(c);
        trust_receiver(c, &rx);
    });
    let env = DeliveryEnv::around(app, rx);
    let threads = env.app.config.webhooks.delivery_threads as usize;
    let per_webhook = env.app.config.webhooks.max_in_flight_per_webhook as usize;
    // Enough tarpit webhooks, two attempts each, to hold every thread if nothing stopped them.
    let tarpits = threads.div_ceil(per_webhook);
    assert!(tarpits <= env.app.config.webhooks.max_per_tenant as usize);
    for i in 0..tarpits {
        let path = format!("/tarpit{i}");
        env.rx.set(&path, tarpit());
        env.hook(&path, json!({ "timeout_seconds": 3, "retry_attempts": 0 }));
    }
    for i in 0..per_webhook {
        env.lead(json!({ "contact_email": format!("slow{i}@example.com") }));
    }
    // The tarpits have what they may hold before the other tenant's lead arrives.
    let held = env.app.config.webhooks.max_in_flight_per_tenant as usize;
    eventually(
        "the tarpits hold their share of the threads",
        ARRIVE,
        || {
            let reached: usize = (0..tarpits)
                .map(|i| env.rx.count(&format!("/tarpit{i}")))
                .sum();
            if reached >= held.min(tarpits * per_webhook) {
                Ok(())
            } else {
                Err(format!("{reached} attempts reached the tarpits"))
            }
        },
    );

    assert_another_tenant_is_delivered_promptly(&env);
}

/// The engine issue's isolation target, small: two tarpit webhooks of one tenant with a backlog
/// of due deliveries, and another tenant's healthy webhook receiving a steady trickle of leads,
/// each of which must arrive well before a tarpit attempt could have freed anything. The fixture
/// runs 4 delivery threads: two tarpits at two attempts each would hold all of them but for the
/// tenant's share (half the threads).
#[test]
fn a_healthy_webhook_keeps_pace_beside_two_tarpits_with_a_backlog() {
    const BACKLOG_EACH: usize = 500;
    const LEADS: usize = 40;
    let env = DeliveryEnv::start();
    let tarpits: Vec<Hook> = (0..2)
        .map(|i| {
            let path = format!("/tarpit{i}");
            env.rx.set(&path, tarpit());
            env.hook(
                &path,
                json!({ "timeout_seconds": 3, "retry_attempts": 0, "event_types": ["lead.created"] }),
            )
        })
        .collect();
    thread::scope(|s| {
        for hook in &tarpits {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..BACKLOG_EACH / 4 {
                        env.app.test_webhook(&env.key, &hook.id).expect(202);
                    }
                });
            }
        }
    });
    eventually("both tarpits hold attempts", ARRIVE, || {
        match (env.rx.count("/tarpit0"), env.rx.count("/tarpit1")) {
            (a, b) if a > 0 && b > 0 => Ok(()),
            seen => Err(format!("{seen:?} attempts reached them")),
        }
    });

    let other = env.app.tenant_with_key("Beta");
    env.rx.set("/healthy", Behaviour::status(204));
    env.hook_for(&other, "/healthy", json!({}));
    let mut sent = Vec::with_capacity(LEADS);
    for i in 0..LEADS {
        sent.push(std::time::Instant::now());
        env.app
            .post_lead(&other, &json!({ "contact_name": format!("Lead {i}") }))
            .expect(201);
        // A steady 50 leads a second, as the target's healthy tenant sends them.
        thread::sleep(Duration::from_millis(20));
    }
    let arrived = env.rx.wait_for("/healthy", LEADS, PROMPT * 5);
    let slowest = arrived
        .iter()
        .zip(&sent)
        .map(|(r, at)| r.at.saturating_duration_since(*at))
        .max()
        .unwrap();
    // The tarpits free nothing for 3 s; every lead arriving well within that shows none of them
    // waited on the tarpits.
    assert!(
        slowest < Duration::from_millis(1_000),
        "the slowest lead took {slowest:?}"
    );
}
