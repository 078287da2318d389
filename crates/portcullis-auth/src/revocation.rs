//! Sessions the provider has ended, which the balancer refuses on their next request: revoked
//! `(issuer, sid)`, and `(issuer, sub) → not_before` (every session of `sub` that began at or
//! before it). Fed by the embedded pools' feed and by back-channel logout tokens.
//!
//! The check runs on every authenticated request, so it is an in-memory lookup: one atomic load
//! when the set is empty (the common case), otherwise a read lock on one of 16 shards per key.
//! Writers (rare) are serialised among themselves and never block readers of other shards.
//!
//! Bounded: an entry is kept [`RETENTION`] seconds past its moment (no session outlives its
//! `session_timeout`, at most 7 days, and a revoked session began before its revocation), expired
//! ones are swept as new ones arrive, and at the cap the older half collapses into a per-issuer
//! floor: every session of that issuer that began at or before the newest collapsed moment is
//! refused. That over-revokes (those users sign in again) rather than forgetting a revocation:
//! the set fails closed, logs a warning and counts it ([`RevocationSet::collapses`]). One user
//! holds at most [`MAX_SIDS_PER_SUB`] single-session entries (further ends of theirs become one
//! user-wide entry), so the cap takes many accounts to reach, not one signing in and out.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// How long (seconds past its moment) a revocation is kept: the longest `session_timeout`.
pub const RETENTION: u64 = 604_800;
/// Most entries held before the older half collapses into per-issuer floors.
pub const MAX_REVOKED: usize = 500_000;
/// Shards of the map (a power of two).
const SHARDS: usize = 16;
/// The least time between two sweeps of expired entries.
const SWEEP_EVERY: u64 = 60;
/// Most single-session revocations kept per user: beyond them that user's further ones become
/// one user-wide revocation, so one account signing in and out cannot fill the set (and force
/// the floor on everyone).
pub const MAX_SIDS_PER_SUB: usize = 32;
/// How far ahead of the balancer's clock a revocation's moment may lie (clock skew); a later one
/// is recorded at this bound, so a bogus far-future moment cannot shut a user out for good.
pub const MAX_FUTURE: u64 = 300;

/// What kind of revocation an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One session, by `sid`.
    Sid,
    /// Every session of a `sub` that began at or before `at`.
    Sub,
    /// Every session of a `sub` without a `sid` (an older cookie, a provider that puts no `sid`
    /// in ID tokens) that began at or before `at`: one of its sessions was ended by `sid`, and
    /// a session without one cannot be told apart from it.
    Unsided,
}

#[derive(Debug)]
struct Entry {
    issuer: Arc<str>,
    kind: Kind,
    /// When the session(s) ended (epoch seconds, the provider's clock).
    at: u64,
    /// A `Sid` entry's user, when known (counted in [`Writer::sids_of`]).
    sub: Option<Box<str>>,
}

/// One session as the check sees it.
#[derive(Debug, Clone, Copy)]
pub struct SessionRef<'a> {
    /// The provider's issuer.
    pub issuer: &'a str,
    /// The ID token's `sid`, when the provider gave one.
    pub sid: Option<&'a str>,
    /// The user's `sub`.
    pub sub: &'a str,
    /// When the session began (the ID token's `iat`; 0 for a cookie older than this field).
    pub began: u64,
}

type Shard = RwLock<HashMap<Box<str>, Vec<Entry>>>;

/// The set of ended sessions. Shared by every authenticate action; outlives config reloads.
pub struct RevocationSet {
    shards: Box<[Shard]>,
    hasher: RandomState,
    /// Entries plus floors: 0 makes the check a single load.
    len: AtomicUsize,
    /// Per issuer: sessions that began at or before it are refused (after a collapse).
    floors: RwLock<HashMap<Arc<str>, u64>>,
    /// One writer at a time (inserts, sweeps, collapses).
    writer: Mutex<Writer>,
    cap: usize,
    retention: u64,
    collapses: AtomicU64,
    /// Where ends learned here (not from the store) are shared; `None`: one node.
    sharer: RwLock<Option<Sharer>>,
}

/// Tells the other nodes of a session this node ended on a logout token it validated:
/// `(issuer, sid, sub, at)`. Installed by the process when it has a shared store.
pub type Sharer = Arc<dyn Fn(&str, Option<&str>, &str, u64) + Send + Sync>;

/// Writer-side state.
#[derive(Default)]
struct Writer {
    /// Interned issuers (a handful), so entries share one allocation each.
    issuers: Vec<Arc<str>>,
    next_sweep: u64,
    entries: usize,
    /// Per (issuer, sub): how many `Sid` entries name that user.
    sids_of: HashMap<(Arc<str>, Box<str>), usize>,
}

impl Default for RevocationSet {
    fn default() -> Self {
        RevocationSet::with_limits(MAX_REVOKED, RETENTION)
    }
}

impl RevocationSet {
    /// A set holding at most `cap` entries, each kept `retention` seconds past its moment.
    pub fn with_limits(cap: usize, retention: u64) -> RevocationSet {
        RevocationSet {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            len: AtomicUsize::new(0),
            floors: RwLock::new(HashMap::new()),
            writer: Mutex::new(Writer::default()),
            cap: cap.max(2),
            retention,
            collapses: AtomicU64::new(0),
            sharer: RwLock::new(None),
        }
    }

    fn shard(&self, key: &str) -> &Shard {
        // SHARDS is a power of two; the low bits of a keyed SipHash are uniform.
        &self.shards[(self.hasher.hash_one(key) as usize) & (SHARDS - 1)]
    }

    /// Shares from now on what [`RevocationSet::end_and_share`] records (several nodes).
    pub fn set_sharer(&self, sharer: Sharer) {
        *self.sharer.write().unwrap_or_else(|p| p.into_inner()) = Some(sharer);
    }

    /// As [`RevocationSet::end`], and when recorded, tells the other nodes through the sharer
    /// (for ends only this node learned: validated back-channel logout tokens).
    pub fn end_and_share(
        &self,
        issuer: &str,
        sid: Option<&str>,
        sub: &str,
        at: u64,
        now: u64,
    ) -> bool {
        let recorded = self.end(issuer, sid, sub, at, now);
        if recorded {
            let sharer = self
                .sharer
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(share) = sharer {
                share(issuer, sid, sub, at);
            }
        }
        recorded
    }

    /// Whether `s` has been ended. No I/O; one atomic load when nothing is revoked.
    pub fn is_revoked(&self, s: &SessionRef<'_>) -> bool {
        if self.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        let hit = |key: &str, pred: &dyn Fn(&Entry) -> bool| {
            let g = self.shard(key).read().unwrap_or_else(|p| p.into_inner());
            g.get(key).is_some_and(|es| es.iter().any(pred))
        };
        if let Some(sid) = s.sid
            && hit(sid, &|e| e.kind == Kind::Sid && *e.issuer == *s.issuer)
        {
            return true;
        }
        if hit(s.sub, &|e| {
            (e.kind == Kind::Sub || (e.kind == Kind::Unsided && s.sid.is_none()))
                && *e.issuer == *s.issuer
                && s.began <= e.at
        }) {
            return true;
        }
        let floors = self.floors.read().unwrap_or_else(|p| p.into_inner());
        !floors.is_empty() && floors.get(s.issuer).is_some_and(|f| s.began <= *f)
    }

    /// Records an ended session (`sid`), or every session of `sub` that began at or before `at`
    /// (`sid: None`). `now` is the balancer's clock, for expiry. Returns whether it was recorded
    /// (false: too old to matter, or already covered).
    pub fn end(&self, issuer: &str, sid: Option<&str>, sub: &str, at: u64, now: u64) -> bool {
        if at.saturating_add(self.retention) <= now {
            return false;
        }
        let at = at.min(now.saturating_add(MAX_FUTURE));
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if now >= w.next_sweep {
            self.sweep_locked(&mut w, now);
        }
        if self
            .floors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(issuer)
            .is_some_and(|f| at <= *f)
        {
            // A session ended at `at` began at or before it: the floor refuses it already.
            return false;
        }
        let issuer = match w.issuers.iter().find(|i| ***i == *issuer) {
            Some(i) => i.clone(),
            None => {
                let i: Arc<str> = Arc::from(issuer);
                w.issuers.push(i.clone());
                i
            }
        };
        let counted = |w: &Writer| {
            w.sids_of
                .get(&(issuer.clone(), Box::from(sub)))
                .copied()
                .unwrap_or(0)
        };
        let (kind, key) = match sid {
            // A user with many ended sessions: this end covers every session of theirs that
            // began before it (over-revokes that user only; fails closed).
            Some(_) if !sub.is_empty() && counted(&w) >= MAX_SIDS_PER_SUB => (Kind::Sub, sub),
            Some(sid) => (Kind::Sid, sid),
            None => (Kind::Sub, sub),
        };
        let entry_sub = (kind == Kind::Sid && !sub.is_empty()).then(|| Box::<str>::from(sub));
        let mut added = self.put(&mut w, &issuer, kind, key, at, entry_sub);
        if kind == Kind::Sid && !sub.is_empty() {
            added |= self.put(&mut w, &issuer, Kind::Unsided, sub, at, None);
        }
        if added && w.entries > self.cap {
            self.collapse_locked(&mut w, now);
        }
        true
    }

    /// Adds an entry, or moves an existing one's moment forward; returns whether it was added.
    fn put(
        &self,
        w: &mut Writer,
        issuer: &Arc<str>,
        kind: Kind,
        key: &str,
        at: u64,
        entry_sub: Option<Box<str>>,
    ) -> bool {
        let added = {
            let mut g = self.shard(key).write().unwrap_or_else(|p| p.into_inner());
            let list = g.entry(Box::from(key)).or_default();
            match list
                .iter_mut()
                .find(|e| e.kind == kind && e.issuer == *issuer)
            {
                Some(e) => {
                    e.at = e.at.max(at);
                    false
                }
                None => {
                    list.push(Entry {
                        issuer: issuer.clone(),
                        kind,
                        at,
                        sub: entry_sub.clone(),
                    });
                    true
                }
            }
        };
        if added {
            if let Some(sub) = entry_sub {
                *w.sids_of.entry((issuer.clone(), sub)).or_default() += 1;
            }
            w.entries += 1;
            self.len.fetch_add(1, Ordering::Release);
        }
        added
    }

    /// Drops entries and floors whose sessions can no longer be alive.
    pub fn sweep(&self, now: u64) {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.sweep_locked(&mut w, now);
    }

    fn sweep_locked(&self, w: &mut Writer, now: u64) {
        w.next_sweep = now.saturating_add(SWEEP_EVERY);
        let alive = |at: u64| at.saturating_add(self.retention) > now;
        self.remove_where(w, |e| !alive(e.at));
        let mut floors = self.floors.write().unwrap_or_else(|p| p.into_inner());
        let before = floors.len();
        floors.retain(|_, f| alive(*f));
        self.len.fetch_sub(before - floors.len(), Ordering::AcqRel);
    }

    /// Removes the entries `drop` selects; returns them as (issuer, at).
    fn remove_where(&self, w: &mut Writer, drop: impl Fn(&Entry) -> bool) -> Vec<(Arc<str>, u64)> {
        let mut removed = Vec::new();
        let mut uncounted = Vec::new();
        for shard in self.shards.iter() {
            let mut g = shard.write().unwrap_or_else(|p| p.into_inner());
            g.retain(|_, list| {
                list.retain_mut(|e| {
                    if drop(e) {
                        removed.push((e.issuer.clone(), e.at));
                        if let Some(sub) = e.sub.take() {
                            uncounted.push((e.issuer.clone(), sub));
                        }
                        false
                    } else {
                        true
                    }
                });
                !list.is_empty()
            });
        }
        for key in uncounted {
            if let Some(n) = w.sids_of.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    w.sids_of.remove(&key);
                }
            }
        }
        w.entries -= removed.len();
        self.len.fetch_sub(removed.len(), Ordering::AcqRel);
        removed
    }

    /// At the cap: the older half of the entries becomes per-issuer floors (fail closed).
    fn collapse_locked(&self, w: &mut Writer, now: u64) {
        self.sweep_locked(w, now);
        if w.entries <= self.cap {
            return;
        }
        let mut moments: Vec<u64> = Vec::with_capacity(w.entries);
        for shard in self.shards.iter() {
            let g = shard.read().unwrap_or_else(|p| p.into_inner());
            moments.extend(g.values().flatten().map(|e| e.at));
        }
        let mid = moments.len() / 2;
        let (_, threshold, _) = moments.select_nth_unstable(mid);
        let threshold = *threshold;
        let removed = self.remove_where(w, |e| e.at <= threshold);
        let mut floors = self.floors.write().unwrap_or_else(|p| p.into_inner());
        for (issuer, at) in &removed {
            let f = floors.entry(issuer.clone()).or_insert_with(|| {
                self.len.fetch_add(1, Ordering::Release);
                0
            });
            *f = (*f).max(*at);
        }
        self.collapses.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            collapsed = removed.len(),
            cap = self.cap,
            "revocation set full: older revocations became per-issuer floors; sessions that began before them must sign in again"
        );
    }

    /// How many revocations are held (entries, not floors).
    pub fn len(&self) -> usize {
        self.writer.lock().map_or(0, |w| w.entries)
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }

    /// How often the cap made the older half collapse into floors.
    pub fn collapses(&self) -> u64 {
        self.collapses.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://idp.example/pool";

    fn s<'a>(sid: Option<&'a str>, sub: &'a str, began: u64) -> SessionRef<'a> {
        SessionRef {
            issuer: ISS,
            sid,
            sub,
            began,
        }
    }

    #[test]
    fn empty_set_revokes_nothing() {
        let set = RevocationSet::default();
        assert!(set.is_empty());
        assert!(!set.is_revoked(&s(Some("sid"), "u", 0)));
        assert!(!set.is_revoked(&s(None, "u", 0)));
    }

    #[test]
    fn sid_revokes_that_session_only() {
        let set = RevocationSet::default();
        assert!(set.end(ISS, Some("sid-1"), "u", 1000, 1000));
        assert!(set.is_revoked(&s(Some("sid-1"), "u", 900)));
        assert!(
            set.is_revoked(&s(Some("sid-1"), "other", 2000)),
            "by sid alone"
        );
        assert!(!set.is_revoked(&s(Some("sid-2"), "u", 900)));
        assert!(
            !set.is_revoked(&s(None, "u", 1001)),
            "a cookie without sid, begun after"
        );
        let other = SessionRef {
            issuer: "https://other.example",
            ..s(Some("sid-1"), "u", 900)
        };
        assert!(!set.is_revoked(&other), "another issuer's sid");
        assert_eq!(set.len(), 2, "the sid and its user's sessions without sid");
    }

    /// Review finding: a session without `sid` (a cookie sealed before sessions carried one, or
    /// a provider whose ID tokens lack it) outlived every single-session end of its user, so a
    /// logout token naming `sid` and `sub` ended nothing of it.
    #[test]
    fn a_session_without_sid_ends_with_its_users_sessions() {
        let set = RevocationSet::default();
        set.end(ISS, Some("sid-1"), "u", 1000, 1000);
        assert!(set.is_revoked(&s(None, "u", 900)), "began before: refused");
        assert!(
            set.is_revoked(&s(None, "u", 0)),
            "a cookie older than began"
        );
        assert!(!set.is_revoked(&s(None, "u", 1001)), "began after");
        assert!(!set.is_revoked(&s(None, "v", 900)), "another user");
        assert!(
            !set.is_revoked(&s(Some("sid-2"), "u", 900)),
            "a session with its own sid"
        );
        // A sid-only end (no sub) cannot name the user.
        set.end(ISS, Some("sid-3"), "", 2000, 2000);
        assert!(!set.is_revoked(&s(None, "w", 1500)));
    }

    #[test]
    fn sub_revokes_sessions_that_began_at_or_before() {
        let set = RevocationSet::default();
        set.end(ISS, None, "u", 1000, 1000);
        assert!(set.is_revoked(&s(Some("a"), "u", 999)));
        assert!(set.is_revoked(&s(None, "u", 1000)), "at the moment itself");
        assert!(set.is_revoked(&s(None, "u", 0)), "an older cookie");
        assert!(!set.is_revoked(&s(Some("b"), "u", 1001)), "signed in after");
        assert!(!set.is_revoked(&s(None, "v", 10)), "another user");
        // A later sign-out moves the moment forward, never back.
        set.end(ISS, None, "u", 2000, 2000);
        set.end(ISS, None, "u", 1500, 2000);
        assert!(set.is_revoked(&s(None, "u", 1999)));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn entries_expire_after_retention() {
        let set = RevocationSet::with_limits(100, 50);
        assert!(
            !set.end(ISS, Some("old"), "u", 10, 100),
            "too old to matter"
        );
        set.end(ISS, Some("a"), "u", 100, 100);
        set.end(ISS, None, "v", 100, 100);
        assert_eq!(set.len(), 3, "a, u's sessions without sid, v");
        set.sweep(149);
        assert_eq!(set.len(), 3);
        set.sweep(150);
        assert_eq!(set.len(), 0);
        assert!(set.is_empty());
        assert!(!set.is_revoked(&s(Some("a"), "u", 0)));
    }

    #[test]
    fn at_the_cap_the_older_half_fails_closed() {
        let set = RevocationSet::with_limits(10, 1_000_000);
        for i in 0..=10u64 {
            set.end(ISS, Some(&format!("sid-{i}")), "u", 100 + i, 100);
        }
        assert_eq!(set.collapses(), 1);
        assert!(set.len() <= 10);
        // Every revoked session is still refused: by its entry or by the floor.
        for i in 0..=10u64 {
            assert!(
                set.is_revoked(&s(Some(&format!("sid-{i}")), "u", 100 + i)),
                "{i}"
            );
        }
        // The floor also refuses other sessions of the issuer that began before it...
        assert!(set.is_revoked(&s(Some("never-revoked"), "w", 100)));
        // ...but not those that began after every collapsed revocation, nor other issuers.
        assert!(!set.is_revoked(&s(Some("new"), "w", 111)));
        let other = SessionRef {
            issuer: "https://other.example",
            ..s(Some("x"), "w", 0)
        };
        assert!(!set.is_revoked(&other));
        // A revocation the floor covers is not stored again.
        assert!(!set.end(ISS, Some("older"), "u", 101, 100));
    }

    /// Review finding: one account signing in and out (each sign-out a new `sid`) filled the
    /// set and forced the floor that signs every user of the issuer out.
    #[test]
    fn one_user_signing_in_and_out_cannot_force_the_floor() {
        let set = RevocationSet::with_limits(100, 1_000_000);
        for i in 0..1000u64 {
            set.end(ISS, Some(&format!("sid-{i}")), "attacker", 100 + i, 100 + i);
        }
        assert_eq!(set.collapses(), 0, "no floor");
        assert!(set.len() <= MAX_SIDS_PER_SUB + 2, "{}", set.len());
        for i in 0..1000u64 {
            assert!(set.is_revoked(&s(Some(&format!("sid-{i}")), "attacker", 100 + i)));
        }
        // Another user's session, begun long before, is untouched.
        assert!(!set.is_revoked(&s(Some("victim-sid"), "victim", 50)));
        // The count follows expiry: once swept, the user gets single-session ends again.
        set.sweep(100 + 1000 + 1_000_000);
        assert!(set.is_empty());
        set.end(ISS, Some("late"), "attacker", 2_000_000, 2_000_000);
        assert!(!set.is_revoked(&s(Some("other"), "attacker", 1_999_999)));
    }

    /// Review finding: a revocation dated far in the future (a forged or skewed feed) refused its
    /// user's every later sign-in and was never swept.
    #[test]
    fn a_far_future_moment_is_bounded() {
        let set = RevocationSet::with_limits(100, 1000);
        set.end(ISS, None, "u", i64::MAX as u64, 100);
        assert!(set.is_revoked(&s(None, "u", 100 + MAX_FUTURE)));
        assert!(!set.is_revoked(&s(None, "u", 100 + MAX_FUTURE + 1)));
        set.sweep(100 + MAX_FUTURE + 1000);
        assert!(set.is_empty());
    }

    proptest::proptest! {
        /// Against a plain model: every recorded revocation is refused, nothing else is (below
        /// the cap and within retention).
        #[test]
        fn matches_a_model(
            ops in proptest::collection::vec((0u8..2, 0u8..6, 0u8..4, 0u64..50), 1..60),
            probes in proptest::collection::vec((0u8..2, 0u8..6, 0u8..4, 0u64..60), 1..40),
        ) {
            let set = RevocationSet::default();
            let mut sids = std::collections::HashSet::new();
            let mut subs: HashMap<(u8, u8), u64> = HashMap::new();
            let mut unsided: HashMap<(u8, u8), u64> = HashMap::new();
            let iss = |i: u8| format!("iss-{i}");
            for (i, sid, sub, at) in &ops {
                if *sid < 3 {
                    set.end(&iss(*i), Some(&format!("s{sid}")), &format!("u{sub}"), *at, 0);
                    sids.insert((*i, *sid));
                    let e = unsided.entry((*i, *sub)).or_insert(*at);
                    *e = (*e).max(*at);
                } else {
                    set.end(&iss(*i), None, &format!("u{sub}"), *at, 0);
                    let e = subs.entry((*i, *sub)).or_insert(*at);
                    *e = (*e).max(*at);
                }
            }
            for (i, sid, sub, began) in &probes {
                let issuer = iss(*i);
                let sid_s = format!("s{sid}");
                let sub_s = format!("u{sub}");
                // Probe sid 5: a session without sid.
                let r = SessionRef { issuer: &issuer, sid: (*sid < 5).then_some(sid_s.as_str()), sub: &sub_s, began: *began };
                let before = |m: &HashMap<(u8, u8), u64>| m.get(&(*i, *sub)).is_some_and(|at| *began <= *at);
                let want = if *sid < 5 { sids.contains(&(*i, *sid)) } else { before(&unsided) }
                    || before(&subs);
                proptest::prop_assert_eq!(set.is_revoked(&r), want);
            }
        }
    }
}
