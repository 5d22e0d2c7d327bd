//! The engine's schedule, in memory: one lane per webhook holding the deliveries leased for it
//! ahead of their attempts, and the rules for how many attempts a webhook may have on the wire,
//! how far ahead it is leased, and whose turn it is.
//!
//! - **Concurrency.** A webhook has at most `window` attempts on the wire, and a tenant's
//!   webhooks together at most `per_tenant`. The window starts at `per_webhook`, halves (down to
//!   one) on a timeout, a refused connection, 429 or 503, and grows back by one after a window's
//!   worth of fast successes: a struggling receiver gets fewer requests, a healthy one its full
//!   share.
//! - **Leasing ahead.** A healthy webhook is leased up to `depth` deliveries ahead, so its
//!   workers never wait for a lease to commit; `depth` grows by one with every fast success, up
//!   to [`AHEAD_PER_WEBHOOK`], and drops back to the window after any failure or slow answer,
//!   the deliveries beyond it given back to the store. A tenant holds at most
//!   [`AHEAD_PER_TENANT`], the engine [`AHEAD_TOTAL`]: memory stays bounded whatever the
//!   backlog.
//! - **Turns.** Lanes with deliveries waiting take turns round-robin; a lane at its window, or
//!   whose tenant is at its share, is passed over until a slot frees.
//! - **A webhook's own limits** (spec §13). `max_concurrency` caps its window instead of
//!   `per_webhook`. `rate_limit_per_minute` spaces its attempts' starts `60 s / rate` apart
//!   (so no minute holds more than the rate): a lane whose next start is still ahead is passed
//!   over like one at its window, and the worker that found nothing to do sleeps until the
//!   earliest such start ([`Turn::wake_at`]). A throttled delivery waits in its lane, never in
//!   a worker, so other webhooks keep every thread; and a throttled lane is leased at most ten
//!   seconds of its rate ahead.
//! - **Slots.** A successful attempt frees its slot when its answer arrives. A failed one keeps
//!   it until its record commits, so an attempt that turns the webhook off (410, or failure for
//!   too long) is followed by no more than the window's other attempts.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::ids::{DeliveryId, TenantId, WebhookId};
use crate::domain::retry::{AttemptError, AttemptResult};
use crate::domain::webhook::Webhook;
use crate::store::dispatch::Leased;

/// Deliveries one webhook is leased ahead at most.
pub const AHEAD_PER_WEBHOOK: usize = 256;
/// Deliveries one tenant's webhooks hold at most, leased or awaiting their record.
pub const AHEAD_PER_TENANT: usize = 1024;
/// Deliveries the engine holds at most.
pub const AHEAD_TOTAL: usize = 4096;
/// A successful answer slower than this counts as a sign of strain.
const SLOW_MS: u32 = 1_000;
/// The longest a `Retry-After` on 429 or 503 pauses a whole webhook.
const MAX_PAUSE: Duration = Duration::from_secs(60);
/// A lane with nothing held is forgotten (with what it learnt of its receiver) after this long.
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// How many attempts one webhook, and one tenant's webhooks together, may have on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_webhook: u32,
    pub per_tenant: u32,
}

impl Limits {
    /// The limits on `threads` delivery threads. Attempts block their thread: one tenant never
    /// holds more than half of them, so its slow receivers leave the other half to everyone else.
    pub fn on_threads(self, threads: usize) -> Limits {
        let half = u32::try_from(threads / 2).unwrap_or(u32::MAX).max(1);
        Limits {
            per_tenant: self.per_tenant.min(half),
            ..self
        }
    }
}

/// What an attempt says about its receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Fast,
    Slow,
    /// Failed: a status the receiver chose, or a TLS, DNS or policy error.
    Failed,
    /// Overloaded or unreachable: timeout, refused connection, 429, 503.
    Overloaded,
    /// 410: the webhook is being turned off.
    Gone,
}

fn verdict(result: &AttemptResult) -> Verdict {
    if result.succeeded() {
        return if result.latency_ms > SLOW_MS {
            Verdict::Slow
        } else {
            Verdict::Fast
        };
    }
    match (result.response_status, result.error) {
        (Some(410), _) => Verdict::Gone,
        (Some(429 | 503), _) => Verdict::Overloaded,
        (None, Some(AttemptError::Timeout | AttemptError::Connect)) => Verdict::Overloaded,
        _ => Verdict::Failed,
    }
}

/// A leased delivery the engine holds, by id.
#[derive(Debug, Clone, Copy)]
struct Hold {
    webhook: WebhookId,
    tenant: TenantId,
    /// Its attempt failed and keeps its slot until recorded.
    keeps_slot: bool,
}

#[derive(Debug, Default)]
struct Share {
    busy: u32,
    held: usize,
}

#[derive(Debug)]
struct Lane {
    tenant: TenantId,
    webhook: Arc<Webhook>,
    /// The store's webhook-edit count when `webhook` was read.
    edits: u64,
    queue: VecDeque<Leased>,
    /// Slots taken: attempts on the wire, and failed ones until their record commits.
    busy: u32,
    /// Queued, on the wire, or awaiting their record.
    held: usize,
    window: u32,
    /// Fast successes since the window last changed.
    streak: u32,
    depth: usize,
    paused_until: Option<Instant>,
    /// When its rate limit next lets an attempt start.
    next_start: Option<Instant>,
    /// Turned off (410, or failing too long): lease nothing more for it.
    halted: bool,
    in_turn: bool,
    /// When it last held anything.
    last_held: Instant,
}

impl Lane {
    fn new(leased: &Leased, limits: Limits, edits: u64) -> Lane {
        let max = max_window(&leased.webhook, limits);
        Lane {
            tenant: leased.webhook.tenant_id,
            webhook: Arc::clone(&leased.webhook),
            edits,
            queue: VecDeque::new(),
            busy: 0,
            held: 0,
            window: max,
            streak: 0,
            depth: (max as usize).min(max_depth(&leased.webhook)),
            paused_until: None,
            next_start: None,
            halted: false,
            in_turn: false,
            last_held: Instant::now(),
        }
    }

    fn paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|until| until > now)
    }

    /// When the rate limit lets the next attempt start, if that is still ahead.
    fn throttled_until(&self, now: Instant) -> Option<Instant> {
        self.next_start.filter(|at| *at > now)
    }

    /// An attempt starts now: the next may start one interval after the later of now and
    /// when this one was due.
    fn started(&mut self, now: Instant) {
        if let Some(rate) = self.webhook.rate_limit_per_minute.filter(|r| *r > 0) {
            let interval = Duration::from_secs(60).div_f64(f64::from(rate));
            let from = self.next_start.map_or(now, |at| at.max(now));
            self.next_start = Some(from + interval);
        }
    }

    /// Run down to half its depth, with room for more, and neither halted nor paused.
    fn wants_lease(&self, now: Instant) -> bool {
        !self.halted
            && !self.paused(now)
            && self.queue.len() <= self.depth / 2
            && self.depth > self.queue.len() + self.busy as usize
    }

    /// The queued deliveries beyond `keep`, latest first, to give back.
    fn shed(&mut self, keep: usize) -> Vec<DeliveryId> {
        let mut shed = Vec::new();
        while self.queue.len() > keep {
            if let Some(leased) = self.queue.pop_back() {
                shed.push(leased.delivery.id);
            }
        }
        shed
    }
}

/// The most attempts on the wire for `webhook`: its own `max_concurrency`, else the engine's.
fn max_window(webhook: &Webhook, limits: Limits) -> u32 {
    webhook.max_concurrency.unwrap_or(limits.per_webhook).max(1)
}

/// How far ahead `webhook` may be leased: ten seconds of its rate limit, if it has one.
fn max_depth(webhook: &Webhook) -> usize {
    webhook
        .throttled_ahead()
        .map_or(AHEAD_PER_WEBHOOK, |(depth, _)| depth.min(AHEAD_PER_WEBHOOK))
}

/// What a recorded attempt let go of.
#[derive(Debug, Default)]
pub struct Released {
    /// Leased deliveries to give back (the attempt turned its webhook off).
    pub give_back: Vec<DeliveryId>,
    /// A failed attempt's slot, kept until its record: a worker can take it.
    pub freed_slot: bool,
    /// Holding it was what kept its tenant or the engine from leasing more.
    pub relieved: bool,
}

/// The next attempt to make, and what the worker must do besides.
#[derive(Debug, Default)]
pub struct Turn {
    /// With its lane's webhook as last read.
    pub attempt: Option<Leased>,
    /// Leased deliveries to give back to the store (their lane was edited or turned off).
    pub give_back: Vec<DeliveryId>,
    /// The lane has run low: the dispatcher should lease more.
    pub running_low: bool,
    /// No attempt now, but a rate-limited lane may start one then: wait until it at most.
    pub wake_at: Option<Instant>,
}

#[derive(Debug)]
pub struct Lanes {
    limits: Limits,
    lanes: HashMap<WebhookId, Lane>,
    /// Lanes with deliveries queued, in turn order.
    turns: VecDeque<WebhookId>,
    tenants: HashMap<TenantId, Share>,
    held: HashMap<DeliveryId, Hold>,
    /// The earliest rate-limited start an idle worker sleeps until ([`Turn::wake_at`]).
    timer: Option<Instant>,
}

impl Lanes {
    pub fn new(limits: Limits) -> Lanes {
        Lanes {
            limits,
            lanes: HashMap::new(),
            turns: VecDeque::new(),
            tenants: HashMap::new(),
            held: HashMap::new(),
            timer: None,
        }
    }

    /// Whether a worker should sleep until `at` as the timer: none sleeps until as early.
    pub fn arm_timer(&mut self, at: Instant) -> bool {
        if self.timer.is_some_and(|t| t <= at) {
            return false;
        }
        self.timer = Some(at);
        true
    }

    /// The timer for `at` woke: unless an earlier one took over meanwhile, nobody is now.
    pub fn timer_woke(&mut self, at: Instant) {
        if self.timer == Some(at) {
            self.timer = None;
        }
    }

    /// How many more deliveries the engine may lease now.
    pub fn budget(&self) -> usize {
        AHEAD_TOTAL.saturating_sub(self.held.len())
    }

    pub fn holds(&self, delivery: DeliveryId) -> bool {
        self.held.contains_key(&delivery)
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// How many of the webhook's due deliveries to lease now, `taken` of its tenant's being
    /// already chosen. A lane is refilled once it has run down to half its depth, so leases
    /// come in batches.
    pub fn room(&self, webhook: WebhookId, tenant: TenantId, taken: usize, now: Instant) -> usize {
        let held = self.tenants.get(&tenant).map_or(0, |s| s.held);
        let of_tenant = AHEAD_PER_TENANT.saturating_sub(held + taken);
        let of_webhook = match self.lanes.get(&webhook) {
            None => self.limits.per_webhook.max(1) as usize,
            Some(lane) if lane.halted || lane.paused(now) => 0,
            Some(lane) if lane.queue.len() > lane.depth / 2 => 0,
            Some(lane) => lane
                .depth
                .saturating_sub(lane.queue.len() + lane.busy as usize),
        };
        of_webhook.min(of_tenant)
    }

    /// Takes in what a lease, made while the store's webhook-edit count was `edits`, returned;
    /// returns what a lane cannot take after all (it was halted or paused while the lease was
    /// being written), to give back.
    pub fn admit(&mut self, leased: Vec<Leased>, edits: u64) -> Vec<DeliveryId> {
        let now = Instant::now();
        let mut refused = Vec::new();
        for l in leased {
            let limits = self.limits;
            let lane = self
                .lanes
                .entry(l.webhook.id)
                .or_insert_with(|| Lane::new(&l, limits, edits));
            if lane.edits <= edits {
                if lane.webhook.rate_limit_per_minute != l.webhook.rate_limit_per_minute {
                    // A new rate counts from now, not from the old one's spacing.
                    lane.next_start = None;
                }
                lane.webhook = Arc::clone(&l.webhook);
                lane.edits = edits;
            }
            lane.held += 1;
            lane.last_held = now;
            self.tenants.entry(lane.tenant).or_default().held += 1;
            self.held.insert(
                l.delivery.id,
                Hold {
                    webhook: l.webhook.id,
                    tenant: lane.tenant,
                    keeps_slot: false,
                },
            );
            if lane.halted || lane.paused(now) {
                refused.push(l.delivery.id);
                continue;
            }
            if !lane.in_turn {
                lane.in_turn = true;
                self.turns.push_back(l.webhook.id);
            }
            lane.queue.push_back(l);
        }
        refused
    }

    /// Whether the webhook's lane would take more deliveries now (it has run down to half its
    /// depth and has room): the dispatcher should lease.
    pub fn wants_lease(&self, webhook: WebhookId) -> bool {
        self.lanes
            .get(&webhook)
            .is_some_and(|lane| lane.wants_lease(Instant::now()))
    }

    /// The next attempt, from the first lane in turn with a free slot. A lane whose webhook was
    /// edited (`last_edit_of` it) after its settings were read gives its queue back instead.
    pub fn take(&mut self, last_edit_of: impl Fn(WebhookId) -> u64) -> Turn {
        let mut turn = Turn::default();
        let now = Instant::now();
        for _ in 0..self.turns.len() {
            let Some(id) = self.turns.pop_front() else {
                break;
            };
            let Some(lane) = self.lanes.get_mut(&id) else {
                continue;
            };
            if lane.queue.is_empty() {
                lane.in_turn = false;
                continue;
            }
            if last_edit_of(id) > lane.edits {
                // Its settings were read before an edit: lease it afresh.
                turn.give_back.extend(lane.shed(0));
                lane.in_turn = false;
                continue;
            }
            let share = self.tenants.entry(lane.tenant).or_default();
            let window = lane.window.min(max_window(&lane.webhook, self.limits));
            if lane.busy >= window || share.busy >= self.limits.per_tenant {
                self.turns.push_back(id);
                continue;
            }
            if let Some(at) = lane.throttled_until(now) {
                turn.wake_at = Some(turn.wake_at.map_or(at, |w| w.min(at)));
                self.turns.push_back(id);
                continue;
            }
            let Some(mut leased) = lane.queue.pop_front() else {
                continue;
            };
            lane.busy += 1;
            share.busy += 1;
            lane.started(now);
            turn.running_low = lane.wants_lease(now);
            if lane.queue.is_empty() {
                lane.in_turn = false;
            } else {
                self.turns.push_back(id);
            }
            leased.webhook = Arc::clone(&lane.webhook);
            turn.attempt = Some(leased);
            return turn;
        }
        turn
    }

    /// An attempt's answer arrived: adjusts its lane and returns the queued deliveries to give
    /// back (a lane in trouble keeps only a window's worth, a paused or gone one none).
    pub fn answered(
        &mut self,
        delivery: DeliveryId,
        result: &AttemptResult,
        now: Instant,
    ) -> Vec<DeliveryId> {
        let Some(hold) = self.held.get_mut(&delivery) else {
            return Vec::new();
        };
        let Some(lane) = self.lanes.get_mut(&hold.webhook) else {
            return Vec::new();
        };
        let share = self.tenants.entry(hold.tenant).or_default();
        let verdict = verdict(result);
        if matches!(verdict, Verdict::Fast | Verdict::Slow) {
            lane.busy = lane.busy.saturating_sub(1);
            share.busy = share.busy.saturating_sub(1);
        } else {
            hold.keeps_slot = true;
        }
        match verdict {
            Verdict::Fast => {
                lane.streak += 1;
                if lane.streak >= lane.window
                    && lane.window < max_window(&lane.webhook, self.limits)
                {
                    lane.window += 1;
                    lane.streak = 0;
                }
                lane.depth = (lane.depth + 1).min(max_depth(&lane.webhook));
                Vec::new()
            }
            Verdict::Slow | Verdict::Failed => {
                lane.streak = 0;
                lane.depth = lane.window as usize;
                lane.shed(lane.depth)
            }
            Verdict::Overloaded => {
                lane.streak = 0;
                lane.window = (lane.window / 2).max(1);
                lane.depth = lane.window as usize;
                if let Some(secs) = result.retry_after_secs {
                    lane.paused_until = Some(now + Duration::from_secs(secs).min(MAX_PAUSE));
                    return lane.shed(0);
                }
                lane.shed(lane.depth)
            }
            Verdict::Gone => {
                lane.halted = true;
                lane.shed(0)
            }
        }
    }

    /// An attempt's record committed (`turned_off`: it turned the webhook off), or failed to
    /// (then the delivery is leased again when its lease runs out).
    pub fn recorded(&mut self, delivery: DeliveryId, turned_off: bool) -> Released {
        let Some(hold) = self.held.remove(&delivery) else {
            return Released::default();
        };
        let at_budget = self.held.len() + 1 >= AHEAD_TOTAL;
        let share = self.tenants.entry(hold.tenant).or_default();
        let relieved = at_budget || share.held >= AHEAD_PER_TENANT;
        share.held = share.held.saturating_sub(1);
        if hold.keeps_slot {
            share.busy = share.busy.saturating_sub(1);
        }
        let mut give_back = Vec::new();
        if let Some(lane) = self.lanes.get_mut(&hold.webhook) {
            lane.held = lane.held.saturating_sub(1);
            if hold.keeps_slot {
                lane.busy = lane.busy.saturating_sub(1);
            }
            if turned_off {
                lane.halted = true;
                give_back = lane.shed(0);
            }
        }
        self.tidy(hold.webhook, hold.tenant);
        Released {
            give_back,
            freed_slot: hold.keeps_slot,
            relieved,
        }
    }

    /// An attempt that never came to a result (it panicked): its slot comes back, and the
    /// delivery, still leased in the store, is due again when its lease runs out.
    pub fn abandon(&mut self, delivery: DeliveryId) {
        if let Some(hold) = self.held.get_mut(&delivery) {
            hold.keeps_slot = true;
        }
        self.recorded(delivery, false);
    }

    /// Deliveries given back to the store are no longer held.
    pub fn given_back(&mut self, deliveries: &[DeliveryId]) {
        for id in deliveries {
            let Some(hold) = self.held.remove(id) else {
                continue;
            };
            if let Some(share) = self.tenants.get_mut(&hold.tenant) {
                share.held = share.held.saturating_sub(1);
            }
            if let Some(lane) = self.lanes.get_mut(&hold.webhook) {
                lane.held = lane.held.saturating_sub(1);
            }
            self.tidy(hold.webhook, hold.tenant);
        }
    }

    /// Forgets a halted lane once it holds nothing, and a tenant with nothing held.
    fn tidy(&mut self, webhook: WebhookId, tenant: TenantId) {
        if let Some(lane) = self.lanes.get_mut(&webhook) {
            lane.last_held = Instant::now();
            if lane.halted && lane.held == 0 && lane.busy == 0 {
                self.lanes.remove(&webhook);
            }
        }
        if let Some(share) = self.tenants.get(&tenant)
            && share.held == 0
            && share.busy == 0
        {
            self.tenants.remove(&tenant);
        }
    }

    /// Forgets the lanes that have held nothing for [`FORGET_AFTER`] and are not paused: what
    /// a lane learnt (its depth, its window) outlives a moment with nothing due, not an hour.
    pub fn forget_idle(&mut self, now: Instant) {
        self.lanes.retain(|_, lane| {
            lane.held > 0
                || lane.busy > 0
                || lane.paused(now)
                || now.saturating_duration_since(lane.last_held) < FORGET_AFTER
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::EventType;
    use crate::domain::ids::EventId;
    use crate::domain::time::Timestamp;
    use crate::store::delivery_queue::{Delivery, DeliveryStatus};
    use crate::store::outbox::Event;
    use crate::store::testing::webhook_settings;

    const LIMITS: Limits = Limits {
        per_webhook: 2,
        per_tenant: 3,
    };

    fn webhook(tenant: TenantId) -> Arc<Webhook> {
        let settings = webhook_settings();
        Arc::new(Webhook::new(
            WebhookId::new(),
            tenant,
            settings,
            "mega_whsec_x".into(),
            Timestamp(0),
        ))
    }

    fn leased(webhook: &Arc<Webhook>) -> Leased {
        let event = Event {
            id: EventId::new(),
            tenant_id: webhook.tenant_id,
            event_type: EventType::LeadCreated,
            seq: Some(1),
            lead_id: None,
            data: crate::store::outbox::EventData::Members("{}".into()),
            occurred_at: Timestamp(0),
            deliveries: 1,
        };
        Leased {
            delivery: Delivery {
                id: DeliveryId::new(),
                tenant_id: webhook.tenant_id,
                webhook_id: webhook.id,
                event_id: event.id,
                event_type: event.event_type,
                status: DeliveryStatus::Delivering,
                attempts: 0,
                cycle_attempts: 0,
                next_attempt_at: None,
                created_at: Timestamp(0),
                delivered_at: None,
                response_status: None,
                latency_ms: None,
            },
            event,
            webhook: Arc::clone(webhook),
        }
    }

    fn answer(status: Option<u16>, error: Option<AttemptError>, latency_ms: u32) -> AttemptResult {
        AttemptResult {
            started_at: Timestamp(0),
            latency_ms,
            response_status: status,
            error,
            response_body_excerpt: String::new(),
            retry_after_secs: None,
        }
    }

    fn fast() -> AttemptResult {
        answer(Some(204), None, 1)
    }

    fn admit(lanes: &mut Lanes, hook: &Arc<Webhook>, n: usize) -> Vec<DeliveryId> {
        let batch: Vec<Leased> = (0..n).map(|_| leased(hook)).collect();
        let ids = batch.iter().map(|l| l.delivery.id).collect();
        assert!(lanes.admit(batch, 0).is_empty(), "the lane takes them all");
        ids
    }

    fn take(lanes: &mut Lanes) -> Option<DeliveryId> {
        lanes.take(|_| 0).attempt.map(|a| a.delivery.id)
    }

    #[test]
    fn a_webhook_has_at_most_its_window_on_the_wire_and_a_tenant_its_share() {
        let tenant = TenantId::new();
        let (a, b) = (webhook(tenant), webhook(tenant));
        let mut lanes = Lanes::new(LIMITS);
        admit(&mut lanes, &a, 5);
        admit(&mut lanes, &b, 5);
        let taken: Vec<_> = std::iter::from_fn(|| take(&mut lanes)).collect();
        assert_eq!(taken.len(), 3, "the tenant's share");
        assert!(lanes.lanes[&a.id].busy <= 2 && lanes.lanes[&b.id].busy <= 2);

        // Another tenant is not held up by the first one's share.
        let other = webhook(TenantId::new());
        admit(&mut lanes, &other, 1);
        assert!(take(&mut lanes).is_some());
    }

    #[test]
    fn a_tenant_s_share_is_at_most_half_the_threads() {
        let limits = Limits {
            per_webhook: 2,
            per_tenant: 8,
        };
        assert_eq!(limits.on_threads(16).per_tenant, 8);
        assert_eq!(limits.on_threads(4).per_tenant, 2);
        assert_eq!(limits.on_threads(1).per_tenant, 1);
        assert_eq!(limits.on_threads(4).per_webhook, 2);
    }

    #[test]
    fn lanes_take_turns() {
        let tenant = TenantId::new();
        let (a, b) = (webhook(tenant), webhook(TenantId::new()));
        let mut lanes = Lanes::new(LIMITS);
        let from_a = admit(&mut lanes, &a, 2);
        let from_b = admit(&mut lanes, &b, 2);
        let order: Vec<_> = std::iter::from_fn(|| take(&mut lanes)).collect();
        assert_eq!(order, [from_a[0], from_b[0], from_a[1], from_b[1]]);
    }

    #[test]
    fn fast_answers_free_their_slot_and_deepen_the_lease_ahead() {
        let hook = webhook(TenantId::new());
        let mut lanes = Lanes::new(LIMITS);
        let now = Instant::now();
        assert_eq!(lanes.room(hook.id, hook.tenant_id, 0, now), 2, "a new lane");
        admit(&mut lanes, &hook, 2);
        for _ in 0..50 {
            let id = take(&mut lanes).unwrap();
            assert!(lanes.answered(id, &fast(), now).is_empty());
            lanes.recorded(id, false);
            admit(&mut lanes, &hook, 1);
        }
        assert_eq!(lanes.lanes[&hook.id].depth, 52);
        assert_eq!(lanes.lanes[&hook.id].busy, 0);
        // Refilled up to its depth, once it has run down to half of it.
        assert_eq!(lanes.room(hook.id, hook.tenant_id, 0, now), 50);
        admit(&mut lanes, &hook, 25);
        assert_eq!(lanes.room(hook.id, hook.tenant_id, 0, now), 0);
    }

    #[test]
    fn a_timeout_halves_the_window_and_gives_back_what_was_leased_ahead() {
        let hook = webhook(TenantId::new());
        let mut lanes = Lanes::new(Limits {
            per_webhook: 4,
            per_tenant: 8,
        });
        let now = Instant::now();
        let ids = admit(&mut lanes, &hook, 10);
        let first = take(&mut lanes).unwrap();
        let back = lanes.answered(
            first,
            &answer(None, Some(AttemptError::Timeout), 5_000),
            now,
        );
        assert_eq!(back.len(), 9 - 2, "a window of two stays queued");
        assert_eq!(back[0], ids[9], "the latest go back first");
        assert_eq!(lanes.lanes[&hook.id].window, 2);
        // The failed attempt keeps its slot until recorded.
        assert_eq!(lanes.lanes[&hook.id].busy, 1);
        lanes.given_back(&back);
        assert_eq!(lanes.held(), 3);
        lanes.recorded(first, false);
        assert_eq!(lanes.lanes[&hook.id].busy, 0);
        assert!(take(&mut lanes).is_some() && take(&mut lanes).is_some());
        assert!(take(&mut lanes).is_none(), "nothing else is queued");
    }

    #[test]
    fn a_narrowed_window_is_remembered_after_the_lane_empties() {
        let hook = webhook(TenantId::new());
        let mut lanes = Lanes::new(LIMITS);
        let now = Instant::now();
        admit(&mut lanes, &hook, 1);
        let id = take(&mut lanes).unwrap();
        lanes.answered(id, &answer(None, Some(AttemptError::Timeout), 3_000), now);
        lanes.recorded(id, false);
        assert_eq!(lanes.held(), 0);
        assert_eq!(
            lanes.room(hook.id, hook.tenant_id, 0, now),
            1,
            "one at a time"
        );
    }

    #[test]
    fn an_abandoned_attempt_gives_its_slot_back() {
        let hook = webhook(TenantId::new());
        let mut lanes = Lanes::new(LIMITS);
        admit(&mut lanes, &hook, 3);
        let (a, b) = (take(&mut lanes).unwrap(), take(&mut lanes).unwrap());
        assert!(take(&mut lanes).is_none(), "the window is full");
        lanes.abandon(a);
        assert!(!lanes.holds(a));
        assert!(take(&mut lanes).is_some());
        assert!(lanes.holds(b));
    }

    #[test]
    fn a_retry_after_pauses_the_webhook_and_410_halts_it() {
        let hook = webhook(TenantId::new());
        let mut lanes = Lanes::new(LIMITS);
        let now = Instant::now();
        admit(&mut lanes, &hook, 3);
        let id = take(&mut lanes).unwrap();
        let mut busy = answer(Some(429), Some(AttemptError::HttpStatus), 2);
        busy.retry_after_secs = Some(30);
        assert_eq!(lanes.answered(id, &busy, now).len(), 2);
        lanes.recorded(id, false);
        assert_eq!(lanes.room(hook.id, hook.tenant_id, 0, now), 0, "paused");
        assert!(lanes.room(hook.id, hook.tenant_id, 0, now + MAX_PAUSE) > 0);

        // A lease written before the pause began is given back as it arrives.
        let late = leased(&hook);
        assert_eq!(lanes.admit(vec![late.clone()], 0), [late.delivery.id]);

        let gone = webhook(TenantId::new());
        admit(&mut lanes, &gone, 3);
        let id = take(&mut lanes).unwrap();
        let answer = answer(Some(410), Some(AttemptError::HttpStatus), 2);
        assert_eq!(lanes.answered(id, &answer, now).len(), 2);
        assert_eq!(lanes.room(gone.id, gone.tenant_id, 0, now), 0);
        let late = leased(&gone);
        assert_eq!(lanes.admit(vec![late.clone()], 0), [late.delivery.id]);
    }

    #[test]
    fn an_edit_sends_queued_deliveries_back_to_be_leased_afresh() {
        let hook = webhook(TenantId::new());
        let mut lanes = Lanes::new(LIMITS);
        let ids = admit(&mut lanes, &hook, 3);
        let other = webhook(TenantId::new());
        admit(&mut lanes, &other, 1);
        // Another webhook's edit leaves this lane alone.
        let edited = |w: WebhookId| if w == other.id { 1 } else { 0 };
        let turn = lanes.take(edited);
        assert_eq!(turn.attempt.map(|a| a.delivery.id), Some(ids[0]));
        let turn = lanes.take(|_| 1);
        assert!(turn.attempt.is_none());
        assert_eq!(turn.give_back.len(), 2 + 1, "both lanes' queues");
        lanes.given_back(&turn.give_back);
        lanes.abandon(ids[0]);
        assert_eq!(lanes.held(), 0);
        lanes.forget_idle(Instant::now());
        assert_eq!(lanes.lanes.len(), 2, "an empty lane is remembered a while");
        lanes.forget_idle(Instant::now() + FORGET_AFTER);
        assert!(lanes.lanes.is_empty(), "and then forgotten");
    }

    #[test]
    fn a_tenant_holds_at_most_its_share_of_leases() {
        let tenant = TenantId::new();
        let lanes = Lanes::new(LIMITS);
        let hook = webhook(tenant);
        let now = Instant::now();
        assert_eq!(
            lanes.room(hook.id, tenant, AHEAD_PER_TENANT - 1, now),
            1,
            "what the lease already chose counts"
        );
        assert_eq!(lanes.room(hook.id, tenant, AHEAD_PER_TENANT, now), 0);
    }
}
