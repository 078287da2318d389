//! Stickiness cookies: `AWSALBTG` keeps a client on a target group of a weighted forward;
//! `AWSALB` (duration-based) and `AWSALBAPP-N` (application-based) keep it on a target.
//!
//! A target cookie's value is `<expiry>-<token>`: the stickiness duration is enforced inside
//! (the token covers the expiry), while the cookie itself lives 7 days, as at ALB. Tokens are
//! HMAC-SHA256 under the balancer's key (`state_dir/lb/mac-key`), so a client can neither pick a
//! target nor extend a duration by writing its own cookie.

use portcullis_auth::keys::MacKey;
use std::time::Duration;

/// How long ALB's target stickiness cookies live in the browser (the duration is checked inside).
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// The application-cookie shards ALB sets (`AWSALBAPP-0` … `-3`).
const APP_SHARDS: usize = 4;

/// A target group's stickiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sticky {
    /// `lb_cookie`: from the first response on, for `seconds`.
    Lb {
        /// Stickiness duration.
        seconds: u64,
    },
    /// `app_cookie`: once the target sets `cookie`, for `seconds`.
    App {
        /// The application's cookie.
        cookie: String,
        /// Stickiness duration.
        seconds: u64,
    },
}

impl Sticky {
    /// The stickiness duration, in seconds.
    pub fn seconds(&self) -> u64 {
        match self {
            Sticky::Lb { seconds } | Sticky::App { seconds, .. } => *seconds,
        }
    }
}

/// A short opaque token naming something of this load balancer (a target group or a target) in
/// a stickiness cookie: a MAC under the balancer's key, so stable across nodes that share the key
/// and unforgeable without it.
pub fn token(key: &MacKey, parts: &[&str]) -> String {
    let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
    hex::encode(&key.sign("portcullis stickiness v1", &parts)[..16])
}

/// Whether a client's cookie value is `genuine` (compared in constant time).
pub fn matches(value: &str, genuine: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(value.as_bytes(), genuine.as_bytes()).is_ok()
}

/// The value of cookie `name` in a request.
pub fn cookie<'a>(h: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    portcullis_auth::session_cookie::cookie_value(h, name)
}

/// Whether a response sets cookie `name`.
pub fn sets_cookie(h: &http::HeaderMap, name: &str) -> bool {
    h.get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split_once('=').is_some_and(|(n, _)| n.trim() == name))
}

/// `Set-Cookie` values for the group cookie and its CORS twin (HTTPS only, as it is `Secure`).
pub fn group_cookies(value: &str, seconds: u64, https: bool) -> Vec<String> {
    let mut v = vec![format!("AWSALBTG={value}; Max-Age={seconds}; Path=/")];
    if https {
        v.push(format!(
            "AWSALBTGCORS={value}; Max-Age={seconds}; Path=/; SameSite=None; Secure"
        ));
    }
    v
}

/// A target cookie's value: the expiry (epoch seconds) and a token over the target and expiry.
pub fn target_value(key: &MacKey, group_arn: &str, authority: &str, expires: u64) -> String {
    let e = expires.to_string();
    format!("{e}-{}", token(key, &[group_arn, authority, &e]))
}

/// The expiry of a target cookie value, when it has not passed.
pub fn live_expiry(value: &str, now: u64) -> Option<u64> {
    let (e, _) = value.split_once('-')?;
    let e: u64 = e.parse().ok()?;
    (e > now).then_some(e)
}

/// `Set-Cookie` values that keep a client on a target: `AWSALB`/`AWSALBCORS`, or the
/// `AWSALBAPP-0..3` shards (the unused ones cleared with `_remove_`, as ALB does).
pub fn target_cookies(sticky: &Sticky, value: &str, https: bool, now: u64) -> Vec<String> {
    let expires = portcullis_core::httpdate(now + COOKIE_LIFETIME.as_secs());
    match sticky {
        Sticky::Lb { .. } => {
            let mut v = vec![format!("AWSALB={value}; Expires={expires}; Path=/")];
            if https {
                v.push(format!(
                    "AWSALBCORS={value}; Expires={expires}; Path=/; SameSite=None; Secure"
                ));
            }
            v
        }
        Sticky::App { .. } => (0..APP_SHARDS)
            .map(|i| {
                let v = if i == 0 { value } else { "_remove_" };
                format!("AWSALBAPP-{i}={v}; Expires={expires}; Path=/")
            })
            .collect(),
    }
}

/// The target cookie a request carries for this kind of stickiness.
pub fn target_cookie<'a>(sticky: &Sticky, h: &'a http::HeaderMap) -> Option<&'a str> {
    match sticky {
        Sticky::Lb { .. } => cookie(h, "AWSALB").or_else(|| cookie(h, "AWSALBCORS")),
        Sticky::App { .. } => cookie(h, "AWSALBAPP-0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expire_and_name_their_target() {
        let k = MacKey::new(&[7; 32]);
        let v = target_value(&k, "arn:tg", "10.0.0.1:80", 1_000);
        assert_eq!(live_expiry(&v, 999), Some(1_000));
        assert_eq!(live_expiry(&v, 1_000), None);
        assert_ne!(v, target_value(&k, "arn:tg", "10.0.0.2:80", 1_000));
        assert_ne!(v, target_value(&k, "arn:tg", "10.0.0.1:80", 1_001));
        assert_ne!(
            v,
            target_value(&MacKey::new(&[8; 32]), "arn:tg", "10.0.0.1:80", 1_000),
            "another key, another value"
        );
        assert!(matches(&v, &v) && !matches(&v[1..], &v));
        assert_eq!(live_expiry("garbage", 0), None);
        assert_eq!(live_expiry("-abc", 0), None);
    }

    proptest::proptest! {
        /// A value carries its expiry, and any cookie text a client sends is read without panic.
        #[test]
        fn expiry_round_trips(e in 0u64..u64::MAX / 2, now in 0u64..u64::MAX / 2, junk in ".{0,64}") {
            let v = target_value(&MacKey::new(&[1; 32]), "arn", "10.0.0.1:80", e);
            proptest::prop_assert_eq!(live_expiry(&v, now), (e > now).then_some(e));
            let _ = live_expiry(&junk, now);
        }
    }

    #[test]
    fn cookies_have_alb_shapes() {
        let lb = target_cookies(&Sticky::Lb { seconds: 60 }, "v", true, 0);
        assert_eq!(lb.len(), 2);
        assert!(lb[0].starts_with("AWSALB=v; Expires=Thu, 08 Jan 1970 00:00:00 GMT; Path=/"));
        assert!(!lb[0].contains("Max-Age"));
        assert!(lb[1].ends_with("SameSite=None; Secure"));
        let app = Sticky::App {
            cookie: "SESSION".into(),
            seconds: 60,
        };
        let c = target_cookies(&app, "v", false, 0);
        assert_eq!(c.len(), 4);
        assert!(c[0].starts_with("AWSALBAPP-0=v;"));
        assert!(c[3].starts_with("AWSALBAPP-3=_remove_;"));
        let mut h = http::HeaderMap::new();
        h.append(http::header::SET_COOKIE, "a=1".parse().unwrap());
        h.append(
            http::header::SET_COOKIE,
            "SESSION=x; Path=/".parse().unwrap(),
        );
        assert!(sets_cookie(&h, "SESSION"));
        assert!(!sets_cookie(&h, "SESS"));
    }
}
