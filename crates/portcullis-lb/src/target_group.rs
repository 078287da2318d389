//! Target groups: targets chosen among the routable ones (all of them when none is: ALB's
//! fail-open) by the group's algorithm, with slow start, stickiness, anomaly mitigation, and
//! draining of targets that a reload removes. A `lambda` group has one function instead of targets.

use crate::stickiness::{self, Sticky};
use crate::upstream::Cutoff;
use portcullis_auth::keys::MacKey;
use portcullis_config::{Protocol, ProtocolVersion};
use portcullis_core::Clock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A target's health, as ALB's `TargetHealth.State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// Registered, not yet checked (`Elb.InitialHealthChecking`).
    Initial,
    /// Passing.
    Healthy,
    /// Failing (`Target.FailedHealthChecks`, `Target.Timeout`, `Target.ResponseCodeMismatch`).
    Unhealthy,
    /// Checks are off (`Target.HealthCheckDisabled`): routed to like a healthy target.
    Unused,
    /// Removed by a reload; finishing its requests (`Target.DeregistrationInProgress`).
    Draining,
}

#[derive(Debug)]
struct HealthRecord {
    state: HealthState,
    ok_run: u32,
    fail_run: u32,
    reason: &'static str,
    /// When the target last became healthy, if that started a slow start.
    ramp_from: Option<Instant>,
    /// Whether the next move to healthy starts a slow start (not for the first targets).
    ramp_next: bool,
}

/// A target's health record, kept across reloads while the target stays in its group.
#[derive(Debug)]
pub struct TargetHealth(Mutex<HealthRecord>);

impl TargetHealth {
    fn new(enabled: bool, ramp_next: bool) -> TargetHealth {
        let (state, reason) = if enabled {
            (HealthState::Initial, "Elb.InitialHealthChecking")
        } else {
            (HealthState::Unused, "Target.HealthCheckDisabled")
        };
        TargetHealth(Mutex::new(HealthRecord {
            state,
            ok_run: 0,
            fail_run: 0,
            reason,
            ramp_from: None,
            ramp_next,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthRecord> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state and its reason code.
    pub fn state(&self) -> (HealthState, &'static str) {
        let g = self.lock();
        (g.state, g.reason)
    }

    /// The share of its turns a target in slow start takes (`None`: not in slow start).
    fn ramp(&self, slow_start: Duration, now: Instant) -> Option<f64> {
        if slow_start.is_zero() {
            return None;
        }
        let since = now.saturating_duration_since(self.lock().ramp_from?);
        (since < slow_start).then(|| (since.as_secs_f64() / slow_start.as_secs_f64()).max(0.02))
    }

    /// Counts one check made at `now` (the group's clock); returns the new state when it changed.
    pub fn record(
        &self,
        pass: bool,
        why: &'static str,
        hc: &portcullis_config::HealthCheck,
        now: Instant,
    ) -> Option<HealthState> {
        let mut g = self.lock();
        let state = g.state;
        if pass {
            g.ok_run += 1;
            g.fail_run = 0;
        } else {
            g.ok_run = 0;
            g.fail_run += 1;
        }
        let next = match state {
            // One pass makes a new target healthy, as at ALB.
            HealthState::Initial if pass => HealthState::Healthy,
            HealthState::Initial | HealthState::Healthy
                if g.fail_run >= hc.unhealthy_threshold_count =>
            {
                HealthState::Unhealthy
            }
            HealthState::Unhealthy if g.ok_run >= hc.healthy_threshold_count => {
                HealthState::Healthy
            }
            s => s,
        };
        g.reason = match next {
            HealthState::Healthy => "",
            HealthState::Unhealthy if g.fail_run > 0 => why,
            _ => g.reason,
        };
        if next != state {
            // Becoming healthy starts a slow start, except for the group's first targets.
            g.ramp_from = (next == HealthState::Healthy && g.ramp_next).then_some(now);
            g.ramp_next = true;
        }
        g.state = next;
        (next != state).then_some(next)
    }
}

/// Recent outcomes of a target's requests, for anomaly mitigation: an exponentially weighted
/// error rate (5xx and connection errors), stored as `f64` bits.
#[derive(Debug, Default)]
pub struct Outcomes(AtomicU64);

impl Outcomes {
    /// Each outcome moves the rate this far toward 0 or 1.
    const ALPHA: f64 = 0.05;

    /// Counts a response (`failed`: 5xx or no response).
    pub fn record(&self, failed: bool) {
        let sample = if failed { 1.0 } else { 0.0 };
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let rate = f64::from_bits(bits);
                Some((rate + Self::ALPHA * (sample - rate)).to_bits())
            });
    }

    /// The current error rate, 0–1.
    pub fn rate(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// One target.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` (IPv6 in brackets).
    pub authority: String,
    /// Its health record.
    pub health: Arc<TargetHealth>,
    /// Requests sent and not yet answered (for `least_outstanding_requests`).
    pub outstanding: Arc<AtomicUsize>,
    /// Fires when the target was removed and its deregistration delay has passed.
    pub cutoff: Arc<Cutoff>,
    /// Its recent error rate (for anomaly mitigation).
    pub outcomes: Arc<Outcomes>,
    /// Its idle HTTP/1.1 connections.
    pub pool: Arc<crate::h1::client::Pool>,
}

/// Counts a request as outstanding on its target until dropped (when the response head arrives).
pub struct Outstanding(Arc<AtomicUsize>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Target {
    /// How the upstream layer reaches this target; `tls` for `https://` groups.
    pub fn destination(&self, tls: bool) -> crate::h1::client::Destination<'_> {
        crate::h1::client::Destination {
            authority: &self.authority,
            tls,
            pool: &self.pool,
        }
    }

    /// Marks a request as sent to this target.
    pub fn begin(&self) -> Outstanding {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        Outstanding(self.outstanding.clone())
    }

    fn routable(&self) -> bool {
        matches!(
            self.health.state().0,
            HealthState::Healthy | HealthState::Unused
        )
    }
}

/// `load_balancing.algorithm.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// In turn.
    RoundRobin,
    /// The target with the fewest requests in flight (ties in turn).
    LeastOutstanding,
    /// At random, by weights (equal unless anomaly mitigation lowers one).
    WeightedRandom,
}

/// A target removed by a reload, finishing its requests until its deadline.
#[derive(Debug, Clone)]
struct Draining {
    target: Target,
    until: Instant,
    /// Removed by the reload that made this group (its cutoff timer is still to start); false
    /// for one carried over from an earlier reload, whose timer runs already.
    new: bool,
}

/// A target group at run time.
pub struct TargetGroup {
    /// Config name.
    pub name: String,
    /// Its ARN, for the access log.
    pub arn: String,
    /// `HTTP` or `HTTPS` to the targets.
    pub protocol: Protocol,
    /// What the targets speak.
    pub protocol_version: ProtocolVersion,
    /// The function of a `lambda` group.
    pub lambda: Option<Arc<crate::lambda::Function>>,
    targets: Vec<Target>,
    draining: Vec<Draining>,
    next: AtomicUsize,
    /// Its health check settings.
    pub health_check: portcullis_config::HealthCheck,
    sticky: Option<Sticky>,
    algorithm: Algorithm,
    anomaly_mitigation: bool,
    slow_start: Duration,
    deregistration_delay: Duration,
    /// Fewer routable targets than this: fail open.
    minimum_healthy: u32,
    /// A share (percent) of the targets under which to fail open.
    minimum_healthy_percent: Option<u32>,
    /// The balancer's clock, which slow start, draining, stickiness and health checks read.
    clock: Arc<Clock>,
    /// Health-check rounds finished (see [`TargetGroup::health_rounds`]).
    rounds: tokio::sync::watch::Sender<u64>,
}

/// A cheap per-process pseudo-random number (xorshift), for `weighted_random` and slow start.
fn random_u64() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let mut x = STATE.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    x
}

/// A pseudo-random number in [0, 1).
fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A `forward` action: one group, or up to five with weights, optionally sticky per client.
pub struct Forward {
    /// The groups and their weights.
    pub groups: Vec<(Arc<TargetGroup>, u32)>,
    total: u32,
    next: AtomicUsize,
    sticky: Option<u64>,
}

impl Forward {
    /// From compiled groups (weights validated: at least one above 0).
    pub fn new(groups: Vec<(Arc<TargetGroup>, u32)>, sticky: Option<u64>) -> Forward {
        let total = groups.iter().map(|(_, w)| *w).sum::<u32>().max(1);
        Forward {
            groups,
            total,
            next: AtomicUsize::new(0),
            sticky,
        }
    }

    /// The group for this request: the one its `AWSALBTG` cookie names, else by weight (exact
    /// proportions: a weighted round robin). Returns the cookies to set.
    pub fn choose(
        &self,
        h: &http::HeaderMap,
        https: bool,
        key: &MacKey,
    ) -> (&Arc<TargetGroup>, Vec<String>) {
        if let Some(secs) = self.sticky
            && let Some(v) =
                stickiness::cookie(h, "AWSALBTG").or_else(|| stickiness::cookie(h, "AWSALBTGCORS"))
            && let Some((g, _)) = self
                .groups
                .iter()
                .find(|(g, w)| *w > 0 && stickiness::matches(v, &stickiness::token(key, &[&g.arn])))
        {
            return (g, stickiness::group_cookies(v, secs, https));
        }
        let g = if self.groups.len() == 1 {
            &self.groups[0].0
        } else {
            // Every `total` requests visit each position once, in a scrambled order (a prime
            // stride), so the groups interleave and the proportions are exact.
            let n = self.next.fetch_add(1, Ordering::Relaxed) as u64;
            let mut pos = (n.wrapping_mul(2_654_435_761) % u64::from(self.total)) as u32;
            let mut chosen = &self.groups[0].0;
            for (g, w) in &self.groups {
                if pos < *w {
                    chosen = g;
                    break;
                }
                pos -= w;
            }
            chosen
        };
        let cookies = self
            .sticky
            .map(|secs| stickiness::group_cookies(&stickiness::token(key, &[&g.arn]), secs, https))
            .unwrap_or_default();
        (g, cookies)
    }
}

/// A target chosen for a request, and whether the request's stickiness cookie named it.
#[derive(Debug, Clone, Copy)]
pub struct Choice<'a> {
    /// The target.
    pub target: &'a Target,
    /// The client's stickiness cookie named it (the client is stuck to it).
    pub stuck: bool,
}

/// What a target choice asks of the response: cookies to set now, and for application-cookie
/// stickiness, cookies to set only if the target's response sets its cookie.
#[derive(Debug, Default)]
pub struct StickyCookies {
    /// Set on the response.
    pub now: Vec<String>,
    /// `(application cookie, cookies to set when the response sets it)`.
    pub if_app_sets: Option<(String, Vec<String>)>,
}

impl TargetGroup {
    /// From config (validated), with this load balancer's ARN prefix and clock. Targets also in
    /// `previous` (the group of the config being replaced) keep their health; targets that left
    /// it drain.
    pub fn new(
        cfg: &portcullis_config::TargetGroup,
        arn: String,
        previous: Option<&TargetGroup>,
        clock: Arc<Clock>,
    ) -> TargetGroup {
        let enabled = cfg.health_check.enabled && cfg.lambda.is_none();
        // The first targets of a group do not slow-start; later ones do.
        let ramp_next = previous.is_some_and(|p| !p.targets.is_empty());
        let now = clock.instant();
        // A target still in the group keeps its records; one coming back from draining keeps
        // its health but not its cutoff, which ends only the requests sent before it left.
        let known = |authority: &str| {
            let p = previous?;
            if let Some(t) = p.targets.iter().find(|t| t.authority == authority) {
                return Some(t.clone());
            }
            let d = p
                .draining
                .iter()
                .find(|d| d.target.authority == authority)?;
            Some(Target {
                cutoff: Arc::new(Cutoff::default()),
                ..d.target.clone()
            })
        };
        let targets: Vec<Target> = cfg
            .targets
            .iter()
            .map(|t| {
                let port = t.port.or(cfg.port).unwrap_or(80);
                let host = if t.id.contains(':') && !t.id.starts_with('[') {
                    format!("[{}]", t.id)
                } else {
                    t.id.clone()
                };
                let authority = format!("{host}:{port}");
                match known(&authority) {
                    Some(old) => Target {
                        authority,
                        health: if previous.is_some_and(|p| p.health_check.enabled == enabled) {
                            old.health.clone()
                        } else {
                            Arc::new(TargetHealth::new(enabled, ramp_next))
                        },
                        outstanding: old.outstanding,
                        cutoff: old.cutoff,
                        outcomes: old.outcomes,
                        pool: old.pool,
                    },
                    None => Target {
                        authority,
                        health: Arc::new(TargetHealth::new(enabled, ramp_next)),
                        outstanding: Arc::new(AtomicUsize::new(0)),
                        cutoff: Arc::new(Cutoff::default()),
                        outcomes: Arc::new(Outcomes::default()),
                        pool: Arc::default(),
                    },
                }
            })
            .collect();
        let delay = Duration::from_secs(cfg.deregistration_delay_seconds);
        let draining = previous
            .map(|p| {
                let left = p.targets.iter().map(|t| Draining {
                    target: t.clone(),
                    until: now + delay,
                    new: true,
                });
                p.draining
                    .iter()
                    .map(|d| Draining {
                        new: false,
                        ..d.clone()
                    })
                    .chain(left)
                    .filter(|d| {
                        d.until > now && !targets.iter().any(|t| t.authority == d.target.authority)
                    })
                    .collect()
            })
            .unwrap_or_default();
        TargetGroup {
            name: cfg.name.clone(),
            arn,
            protocol: cfg.protocol,
            protocol_version: cfg.protocol_version,
            lambda: cfg
                .lambda
                .as_ref()
                .map(|f| Arc::new(crate::lambda::Function::new(f))),
            targets,
            draining,
            next: AtomicUsize::new(0),
            health_check: cfg.health_check.clone(),
            sticky: cfg.stickiness.as_ref().filter(|s| s.enabled).map(|s| {
                match (s.kind.as_str(), &s.cookie_name) {
                    ("app_cookie", Some(c)) => Sticky::App {
                        cookie: c.clone(),
                        seconds: s.duration_seconds,
                    },
                    _ => Sticky::Lb {
                        seconds: s.duration_seconds,
                    },
                }
            }),
            algorithm: match cfg.load_balancing_algorithm.as_str() {
                "least_outstanding_requests" => Algorithm::LeastOutstanding,
                "weighted_random" => Algorithm::WeightedRandom,
                _ => Algorithm::RoundRobin,
            },
            anomaly_mitigation: cfg.anomaly_mitigation,
            slow_start: Duration::from_secs(cfg.slow_start_seconds),
            deregistration_delay: delay,
            minimum_healthy: cfg.minimum_healthy_targets_count,
            minimum_healthy_percent: cfg.minimum_healthy_targets_percentage,
            clock,
            rounds: tokio::sync::watch::Sender::new(0),
        }
    }

    /// The balancer's clock, which the group's time-based decisions read.
    pub fn clock(&self) -> &Arc<Clock> {
        &self.clock
    }

    /// The number of health-check rounds finished so far, and a way to wait for the next: tests
    /// move the clock by an interval and wait for the round instead of sleeping.
    pub fn health_rounds(&self) -> tokio::sync::watch::Receiver<u64> {
        self.rounds.subscribe()
    }

    /// Counts a finished health-check round.
    pub(crate) fn round_done(&self) {
        self.rounds.send_modify(|n| *n += 1);
    }

    /// Whether `routable` targets are fewer than the group's minimum (count or percentage), so
    /// that requests go to every target (ALB's `unhealthy_state_routing`).
    fn below_minimum(&self, routable: usize) -> bool {
        let all = self.targets.len();
        routable < self.minimum_healthy as usize
            || self
                .minimum_healthy_percent
                .is_some_and(|p| routable * 100 < all * p as usize)
    }

    /// Whether anomaly mitigation lowers anomalous targets' weights (`weighted_random` with
    /// `anomaly_mitigation`).
    pub fn mitigates(&self) -> bool {
        self.anomaly_mitigation && self.algorithm == Algorithm::WeightedRandom
    }

    /// Seconds since the epoch by the group's clock, for stickiness durations.
    fn wall_secs(&self) -> u64 {
        u64::try_from(self.clock.now()).unwrap_or(0)
    }

    /// The targets to health-check.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Ends the requests of every target that left with this reload once its delay passes.
    pub fn start_draining(&self) {
        for d in self.draining.iter().filter(|d| d.new) {
            drain(&d.target, d.until, &self.clock);
        }
    }

    /// Drains every target of a group that a reload removed whole.
    pub fn drain_all(&self) {
        let until = self.clock.instant() + self.deregistration_delay;
        for t in &self.targets {
            drain(t, until, &self.clock);
        }
    }

    /// The target for a request: the one its stickiness cookie names while that target is
    /// routable and the cookie is within its duration, else the next one.
    pub fn pick_for(&self, h: &http::HeaderMap, key: &MacKey) -> Option<Choice<'_>> {
        if let Some(sticky) = &self.sticky
            && let Some(v) = stickiness::target_cookie(sticky, h)
        {
            let now = self.wall_secs();
            if let Some(expiry) = stickiness::live_expiry(v, now)
                // Never longer than the configured duration (which a reload may have shortened).
                && expiry <= now.saturating_add(sticky.seconds())
                && let Some(t) = self.targets.iter().find(|t| {
                    t.routable()
                        && stickiness::matches(
                            v,
                            &stickiness::target_value(key, &self.arn, &t.authority, expiry),
                        )
                })
            {
                return Some(Choice {
                    target: t,
                    stuck: true,
                });
            }
        }
        self.pick().map(|target| Choice {
            target,
            stuck: false,
        })
    }

    /// The stickiness cookies the response from `choice` carries, naming its target: every
    /// response of a client stuck to it renews them (the duration restarts); a new choice gets
    /// them now (`lb_cookie`) or once the target sets the application's cookie (`app_cookie`).
    pub fn sticky_cookies(&self, choice: Choice<'_>, https: bool, key: &MacKey) -> StickyCookies {
        let Some(sticky) = &self.sticky else {
            return StickyCookies::default();
        };
        let now = self.wall_secs();
        let value = stickiness::target_value(
            key,
            &self.arn,
            &choice.target.authority,
            now + sticky.seconds(),
        );
        let cookies = stickiness::target_cookies(sticky, &value, https, now);
        match sticky {
            Sticky::App { cookie, .. } if !choice.stuck => StickyCookies {
                now: Vec::new(),
                if_app_sets: Some((cookie.clone(), cookies)),
            },
            _ => StickyCookies {
                now: cookies,
                if_app_sets: None,
            },
        }
    }

    /// Another target than `failed`'s (whose connection was refused) by the group's algorithm;
    /// `None` when there is no other. A client stuck to the failed target is stuck to this one
    /// from now on, as at ALB.
    pub fn pick_other(&self, failed: Choice<'_>) -> Option<Choice<'_>> {
        let other = (0..self.targets.len()).find_map(|_| {
            self.pick()
                .filter(|t| t.authority != failed.target.authority)
        })?;
        Some(Choice {
            target: other,
            stuck: failed.stuck,
        })
    }

    /// The next target by the group's algorithm, among the routable ones, or among all when none
    /// is (fail-open); `None` when the group is empty (503).
    pub fn pick(&self) -> Option<&Target> {
        if self.targets.is_empty() {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Every target when none is routable (fail-open), else the routable ones; no allocation
        // on this path unless anomaly mitigation needs weights.
        let routable = self.targets.iter().filter(|t| t.routable()).count();
        let fail_open = routable == 0 || self.below_minimum(routable);
        let in_pool = |t: &&Target| fail_open || t.routable();
        let count = if fail_open {
            self.targets.len()
        } else {
            routable
        };
        let nth = |k: usize| self.targets.iter().filter(in_pool).nth(k);
        // A target in slow start takes only its share of the turns that come to it.
        let now = (!self.slow_start.is_zero()).then(|| self.clock.instant());
        let accepts = |t: &Target| {
            now.and_then(|now| t.health.ramp(self.slow_start, now))
                .is_none_or(|share| random_unit() < share)
        };
        match self.algorithm {
            Algorithm::RoundRobin => (0..count)
                .filter_map(|i| nth((n + i) % count))
                .find(|t| accepts(t))
                .or_else(|| nth(n % count)),
            Algorithm::WeightedRandom if !self.mitigates() || count < 3 => (0..count)
                .filter_map(|_| nth(random_u64() as usize % count))
                .find(|t| accepts(t))
                .or_else(|| nth(random_u64() as usize % count)),
            Algorithm::WeightedRandom => {
                let pool: Vec<&Target> = self.targets.iter().filter(in_pool).collect();
                let weights = self.weights(&pool);
                let total: f64 = weights.iter().sum();
                (0..count)
                    .map(|_| {
                        let mut x = random_unit() * total;
                        let mut chosen = pool[count - 1];
                        for (t, w) in pool.iter().zip(&weights) {
                            if x < *w {
                                chosen = t;
                                break;
                            }
                            x -= w;
                        }
                        chosen
                    })
                    .find(|t| accepts(t))
                    .or(Some(pool[random_u64() as usize % count]))
            }
            Algorithm::LeastOutstanding => {
                // Start the scan at a rotating offset so ties are broken in turn.
                let len = self.targets.len();
                (0..len)
                    .map(|i| &self.targets[(n + i) % len])
                    .filter(in_pool)
                    .min_by_key(|t| t.outstanding.load(Ordering::Relaxed))
            }
        }
    }

    /// Each target's weight for `weighted_random`: 1, or less for a target that anomaly
    /// mitigation finds failing out of proportion to its peers (at least 3 of them).
    fn weights(&self, pool: &[&Target]) -> Vec<f64> {
        let rates: Vec<f64> = pool.iter().map(|t| t.outcomes.rate()).collect();
        (0..pool.len())
            .map(|i| match anomalous(&rates, i) {
                // Traffic falls with the error rate and comes back as the rate recovers.
                true => (1.0 - rates[i]).clamp(0.05, 1.0) * 0.5,
                false => 1.0,
            })
            .collect()
    }

    /// `(authority, state, reason, anomalous)` of every target, draining ones included (ALB's
    /// DescribeTargetHealth).
    pub fn health(&self) -> Vec<(String, HealthState, &'static str, bool)> {
        let rates: Vec<f64> = self.targets.iter().map(|t| t.outcomes.rate()).collect();
        let now = self.clock.instant();
        self.targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let (s, r) = t.health.state();
                (t.authority.clone(), s, r, anomalous(&rates, i))
            })
            .chain(
                self.draining
                    .iter()
                    .filter(|d| d.until > now && !d.target.cutoff.fired())
                    .map(|d| {
                        (
                            d.target.authority.clone(),
                            HealthState::Draining,
                            "Target.DeregistrationInProgress",
                            false,
                        )
                    }),
            )
            .collect()
    }
}

/// Fires a removed target's cutoff when `clock` reaches `until`.
fn drain(t: &Target, until: Instant, clock: &Arc<Clock>) {
    let (cutoff, clock) = (t.cutoff.clone(), clock.clone());
    tokio::spawn(async move {
        clock.sleep_until(until).await;
        cutoff.fire();
    });
}

/// Whether target `i`'s error rate stands out: above 10% and more than twice its peers' mean
/// plus 5 points.
fn anomalous(rates: &[f64], i: usize) -> bool {
    if rates.len() < 3 {
        return false;
    }
    let peers = (rates.iter().sum::<f64>() - rates[i]) / (rates.len() - 1) as f64;
    rates[i] > 0.10 && rates[i] > 2.0 * peers + 0.05
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_and_ipv6() {
        let cfg: portcullis_config::TargetGroup = toml::from_str(
            "name = \"a\"\nport = 80\ntargets = [{ id = \"10.0.0.1\" }, { id = \"::1\", port = 81 }]",
        )
        .unwrap();
        let tg = TargetGroup::new(&cfg, "arn".into(), None, Arc::default());
        let picks: Vec<String> = (0..4)
            .map(|_| tg.pick().unwrap().authority.clone())
            .collect();
        assert_eq!(
            picks,
            ["10.0.0.1:80", "[::1]:81", "10.0.0.1:80", "[::1]:81"]
        );
        // Every algorithm fails open over targets that are not healthy yet (`initial`).
        for algorithm in ["weighted_random", "least_outstanding_requests"] {
            let cfg: portcullis_config::TargetGroup = toml::from_str(&format!(
                "name = \"a\"\nport = 80\nload_balancing_algorithm = \"{algorithm}\"\ntargets = [{{ id = \"10.0.0.1\" }}, {{ id = \"10.0.0.2\" }}, {{ id = \"10.0.0.3\" }}]"
            ))
            .unwrap();
            let tg = TargetGroup::new(&cfg, "arn".into(), None, Arc::default());
            let seen: std::collections::HashSet<String> = (0..60)
                .map(|_| tg.pick().unwrap().authority.clone())
                .collect();
            assert_eq!(seen.len(), 3, "{algorithm}: {seen:?}");
            if algorithm == "least_outstanding_requests" {
                // Two requests in flight on .1 and .2: the next goes to .3.
                let (_a, _b) = (tg.targets[0].begin(), tg.targets[1].begin());
                assert_eq!(tg.pick().unwrap().authority, "10.0.0.3:80");
            }
        }
        // Below the minimum of routable targets, every target takes requests.
        let cfg: portcullis_config::TargetGroup = toml::from_str(
            "name = \"m\"\nport = 80\nminimum_healthy_targets_percentage = 50\nhealth_check = { enabled = true }\ntargets = [{ id = \"10.0.0.1\" }, { id = \"10.0.0.2\" }, { id = \"10.0.0.3\" }]",
        )
        .unwrap();
        let tg = TargetGroup::new(&cfg, "arn".into(), None, Arc::default());
        let hc = cfg.health_check.clone();
        tg.targets[0].health.record(true, "", &hc, Instant::now());
        assert!(tg.below_minimum(1));
        let seen: std::collections::HashSet<String> = (0..6)
            .map(|_| tg.pick().unwrap().authority.clone())
            .collect();
        assert_eq!(seen.len(), 3, "1 of 3 healthy is under 50%: fail open");
        tg.targets[1].health.record(true, "", &hc, Instant::now());
        let seen: std::collections::HashSet<String> = (0..6)
            .map(|_| tg.pick().unwrap().authority.clone())
            .collect();
        assert_eq!(seen.len(), 2, "2 of 3 healthy: only those");
        let empty: portcullis_config::TargetGroup = toml::from_str("name = \"e\"").unwrap();
        assert!(
            TargetGroup::new(&empty, "arn".into(), None, Arc::default())
                .pick()
                .is_none()
        );
    }

    #[test]
    fn group_and_target_stickiness_cookies_are_keyed() {
        let key = MacKey::new(&[9; 32]);
        let group = |name: &str| {
            let cfg: portcullis_config::TargetGroup = toml::from_str(&format!(
                "name = \"{name}\"\nport = 80\nhealth_check = {{ enabled = false }}\ntargets = [{{ id = \"10.0.0.1\" }}, {{ id = \"10.0.0.2\" }}]\nstickiness = {{ enabled = true, type = \"lb_cookie\", duration_seconds = 60 }}"
            ))
            .unwrap();
            Arc::new(TargetGroup::new(
                &cfg,
                format!("arn:{name}"),
                None,
                Arc::default(),
            ))
        };
        let fwd = Forward::new(vec![(group("blue"), 50), (group("green"), 50)], Some(60));
        let with = |c: String| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::COOKIE, c.parse().unwrap());
            h
        };
        // A group cookie made without the key (the old unkeyed SHA-256, or another key) is
        // ignored: the groups alternate by weight.
        let forged = with(format!(
            "AWSALBTG={}",
            stickiness::token(&MacKey::new(&[1; 32]), &["arn:green"])
        ));
        let chosen: std::collections::HashSet<String> = (0..4)
            .map(|_| fwd.choose(&forged, false, &key).0.arn.clone())
            .collect();
        assert_eq!(chosen.len(), 2, "{chosen:?}");
        // The balancer's own keeps its group.
        let genuine = with(format!(
            "AWSALBTG={}",
            stickiness::token(&key, &["arn:green"])
        ));
        for _ in 0..4 {
            assert_eq!(fwd.choose(&genuine, false, &key).0.arn, "arn:green");
        }
        // A target cookie with a MAC under another key, or with a duration beyond the
        // configured one, is ignored and a fresh one issued.
        let tg = group("t");
        let far = portcullis_core::now() + 10_000;
        for c in [
            stickiness::target_value(&MacKey::new(&[1; 32]), "arn:t", "10.0.0.2:80", far - 9_990),
            stickiness::target_value(&key, "arn:t", "10.0.0.2:80", far),
        ] {
            let h = with(format!("AWSALB={c}"));
            let picks: std::collections::HashSet<String> = (0..4)
                .map(|_| tg.pick_for(&h, &key).unwrap().target.authority.clone())
                .collect();
            assert_eq!(picks.len(), 2, "{c}: {picks:?}");
        }
        let good = stickiness::target_value(&key, "arn:t", "10.0.0.2:80", far - 9_990);
        let h = with(format!("AWSALB={good}"));
        for _ in 0..4 {
            assert_eq!(
                tg.pick_for(&h, &key).unwrap().target.authority,
                "10.0.0.2:80"
            );
        }
    }
    /// Slow start and draining read the balancer's clock: moving it ramps a new target up and
    /// ends a removed target's delay, with no sleep.
    #[tokio::test]
    async fn slow_start_and_draining_follow_the_clock() {
        let clock = Arc::new(Clock::default());
        let cfg = |targets: &str| -> portcullis_config::TargetGroup {
            toml::from_str(&format!(
                "name = \"s\"\nport = 80\nslow_start_seconds = 30\nderegistration_delay_seconds = 60\nhealth_check = {{ enabled = true }}\ntargets = [{targets}]"
            ))
            .unwrap()
        };
        let one = cfg("{ id = \"10.0.0.1\" }");
        let two = cfg("{ id = \"10.0.0.1\" }, { id = \"10.0.0.2\" }");
        let hc = one.health_check.clone();
        let first = TargetGroup::new(&one, "arn".into(), None, clock.clone());
        first.targets[0]
            .health
            .record(true, "", &hc, clock.instant());
        let grown = TargetGroup::new(&two, "arn".into(), Some(&first), clock.clone());
        grown.targets[1]
            .health
            .record(true, "", &hc, clock.instant());
        let share = |t: &Target| t.health.ramp(grown.slow_start, clock.instant());
        assert_eq!(
            share(&grown.targets[0]),
            None,
            "the first target does not ramp"
        );
        assert!(share(&grown.targets[1]).unwrap() < 0.05);
        clock.advance_ms(15_000);
        let half = share(&grown.targets[1]).unwrap();
        assert!((0.5..0.55).contains(&half), "{half}");
        clock.advance_ms(15_000);
        assert_eq!(share(&grown.targets[1]), None, "the ramp is over");

        // A reload back to one target drains the other for 60 s of the clock.
        let shrunk = TargetGroup::new(&one, "arn".into(), Some(&grown), clock.clone());
        shrunk.start_draining();
        let draining = |tg: &TargetGroup| {
            tg.health()
                .iter()
                .filter(|h| h.1 == HealthState::Draining)
                .count()
        };
        let cutoff = shrunk.draining[0].target.cutoff.clone();
        assert_eq!(draining(&shrunk), 1);
        clock.advance_ms(59_000);
        tokio::task::yield_now().await;
        assert!(!cutoff.fired(), "59 s into a 60 s delay");
        assert_eq!(draining(&shrunk), 1);
        clock.advance_ms(1_000);
        tokio::time::timeout(Duration::from_secs(5), cutoff.reached())
            .await
            .expect("the delay is over on the clock");
        assert_eq!(draining(&shrunk), 0);
    }

    /// A stickiness duration runs on the balancer's clock.
    #[test]
    fn stickiness_durations_follow_the_clock() {
        let key = MacKey::new(&[9; 32]);
        let clock = Arc::new(Clock::default());
        let cfg: portcullis_config::TargetGroup = toml::from_str(
            "name = \"a\"\nport = 80\nhealth_check = { enabled = false }\ntargets = [{ id = \"10.0.0.1\" }, { id = \"10.0.0.2\" }]\nstickiness = { enabled = true, type = \"lb_cookie\", duration_seconds = 60 }",
        )
        .unwrap();
        let tg = TargetGroup::new(&cfg, "arn:a".into(), None, clock.clone());
        let cookies = tg.sticky_cookies(
            Choice {
                target: &tg.targets[1],
                stuck: false,
            },
            false,
            &key,
        );
        let value = cookies.now[0].strip_prefix("AWSALB=").unwrap();
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            format!("AWSALB={}", value.split(';').next().unwrap())
                .parse()
                .unwrap(),
        );
        let stuck = |tg: &TargetGroup| tg.pick_for(&h, &key).unwrap().stuck;
        assert!(stuck(&tg));
        clock.advance_ms(50_000);
        assert!(stuck(&tg), "50 s into 60");
        clock.advance_ms(10_000);
        assert!(!stuck(&tg), "the duration is over on the clock");
    }

    /// A retry keeps the client's stickiness and names the new target: a stuck client's cookies
    /// go out now, a fresh `app_cookie` choice's only once the application sets its cookie.
    #[test]
    fn a_retry_moves_stickiness_to_the_other_target() {
        let key = MacKey::new(&[9; 32]);
        let cfg: portcullis_config::TargetGroup = toml::from_str(
            "name = \"a\"\nport = 80\nhealth_check = { enabled = false }\ntargets = [{ id = \"10.0.0.1\" }, { id = \"10.0.0.2\" }]\nstickiness = { enabled = true, type = \"app_cookie\", cookie_name = \"S\", duration_seconds = 60 }",
        )
        .unwrap();
        let tg = TargetGroup::new(&cfg, "arn:a".into(), None, Arc::default());
        let (first, second) = (&tg.targets[0], &tg.targets[1]);
        let value =
            stickiness::target_value(&key, "arn:a", &first.authority, portcullis_core::now() + 30);
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            format!("AWSALBAPP-0={value}").parse().unwrap(),
        );
        let stuck = tg.pick_for(&h, &key).unwrap();
        assert!(stuck.stuck && std::ptr::eq(stuck.target, first));
        let moved = tg.pick_other(stuck).unwrap();
        assert!(moved.stuck && std::ptr::eq(moved.target, second));
        let cookies = tg.sticky_cookies(moved, false, &key);
        assert!(cookies.if_app_sets.is_none());
        let app0 = cookies.now[0].strip_prefix("AWSALBAPP-0=").unwrap();
        let app0 = app0.split(';').next().unwrap();
        let expiry = stickiness::live_expiry(app0, portcullis_core::now()).unwrap();
        assert_eq!(
            app0,
            stickiness::target_value(&key, "arn:a", &second.authority, expiry)
        );
        // A fresh choice moved by a retry stays fresh.
        let fresh = tg
            .pick_other(Choice {
                target: first,
                stuck: false,
            })
            .unwrap();
        assert!(!fresh.stuck && std::ptr::eq(fresh.target, second));
        let cookies = tg.sticky_cookies(fresh, false, &key);
        assert!(cookies.now.is_empty());
        assert_eq!(cookies.if_app_sets.unwrap().0, "S");
    }
}
