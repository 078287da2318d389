//! Load-time checks: every ALB or Cognito rule a config can break, reported with file, field and reason.

use crate::model::*;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// One broken rule in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// Dotted path of the field, e.g. `listeners[0].rules[1].priority`.
    pub field: String,
    /// Why it is refused and, where useful, what to do.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.file.display(),
            self.field,
            self.reason
        )
    }
}

/// Scopes every pool knows without a resource server.
pub const RESERVED_SCOPES: [&str; 5] = [
    "openid",
    "email",
    "phone",
    "profile",
    "aws.cognito.signin.user.admin",
];

/// ALB's fixed-response content types.
pub const FIXED_RESPONSE_CONTENT_TYPES: [&str; 5] = [
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
];

struct Checker<'a> {
    file: &'a Path,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn fail(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            field: field.into(),
            reason: reason.into(),
        });
    }
}

/// Returns every rule the config breaks (empty when it is usable).
pub fn validate(config: &Config, file: &Path) -> Vec<ConfigError> {
    let mut c = Checker {
        file,
        errors: Vec::new(),
    };
    check_load_balancer(&mut c, &config.load_balancer);
    let tg_names = check_target_groups(&mut c, &config.target_groups);
    check_user_pools(&mut c, &config.user_pools);
    let mut bound = HashSet::new();
    for (i, l) in config.listeners.iter().enumerate() {
        let at = format!("listeners[{i}]");
        if l.port != 0 && !bound.insert((l.address.clone(), l.port)) {
            c.fail(
                format!("{at}.port"),
                format!("port {} is used by another listener", l.port),
            );
        }
        check_listener(&mut c, &at, l, config, &tg_names);
    }
    c.errors
}

fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn check_load_balancer(c: &mut Checker, lb: &LoadBalancer) {
    if !["append", "preserve", "remove"].contains(&lb.xff_header_processing_mode.as_str()) {
        c.fail(
            "load_balancer.xff_header_processing_mode",
            "must be append, preserve or remove",
        );
    }
    if !is_name(&lb.name, 32) {
        c.fail(
            "load_balancer.name",
            "must be 1-32 letters, digits or '-', not starting or ending with '-'",
        );
    }
    if let Some(id) = &lb.id
        && (id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        c.fail("load_balancer.id", "must be 16 hexadecimal digits");
    }
    if !(1..=4000).contains(&lb.idle_timeout_seconds) {
        c.fail("load_balancer.idle_timeout_seconds", "must be 1-4000");
    }
    match lb.desync_mitigation_mode.as_str() {
        "defensive" => {}
        "monitor" | "strictest" => c.fail(
            "load_balancer.desync_mitigation_mode",
            "only \"defensive\" is supported: ambiguous framing (Transfer-Encoding with Content-Length) is read as chunked and the connection closed, severe framing errors get 400",
        ),
        _ => c.fail(
            "load_balancer.desync_mitigation_mode",
            "must be monitor, defensive or strictest (only defensive is supported)",
        ),
    }
    if !(1..=604_800).contains(&lb.client_keep_alive_seconds) {
        c.fail(
            "load_balancer.client_keep_alive_seconds",
            "must be 1-604800 (ALB: 60-604800)",
        );
    }
    if lb.region.is_empty()
        || !lb
            .region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        c.fail(
            "load_balancer.region",
            "must be letters, digits and '-', e.g. us-east-1",
        );
    }
    if lb.account_id.len() != 12 || !lb.account_id.bytes().all(|b| b.is_ascii_digit()) {
        c.fail("load_balancer.account_id", "must be 12 digits");
    }
    if let Some(admin) = &lb.admin {
        if admin.listen.parse::<std::net::SocketAddr>().is_err() {
            c.fail(
                "load_balancer.admin.listen",
                "must be an address and port, e.g. 127.0.0.1:9100",
            );
        }
        if let Some(u) = &admin.base_url
            && parse_url(u).is_none()
        {
            c.fail(
                "load_balancer.admin.base_url",
                "must be an absolute http(s) URL",
            );
        }
    }
}

/// Whether a matcher list (`200`, `200,202`, `200-299`) holds only codes in `range`.
fn codes_ok(list: &str, range: std::ops::RangeInclusive<u16>) -> bool {
    list.split(',').all(|part| {
        let in_range = |s: &str| s.trim().parse::<u16>().is_ok_and(|c| range.contains(&c));
        match part.split_once('-') {
            Some((a, b)) => in_range(a) && in_range(b),
            None => in_range(part),
        }
    })
}

/// Protocol, target type, Lambda function and the attributes that depend on them.
fn check_target_kind(c: &mut Checker, at: &str, tg: &TargetGroup) {
    let lambda = tg.target_type == TargetType::Lambda;
    match (&tg.lambda, lambda) {
        (None, true) => c.fail(
            format!("{at}.lambda"),
            "a lambda target group needs `lambda = { endpoint = \"http://…\" }`",
        ),
        (Some(_), false) => c.fail(format!("{at}.lambda"), "only for target_type = \"lambda\""),
        (Some(f), true) => {
            let ok = f.endpoint.parse::<http::Uri>().ok().is_some_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
            });
            if !ok {
                c.fail(
                    format!("{at}.lambda.endpoint"),
                    "must be an http:// or https:// URL",
                );
            }
            if f.function.is_empty()
                || f.function.len() > 140
                || !f
                    .function
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b))
            {
                c.fail(
                    format!("{at}.lambda.function"),
                    "must be a function name or ARN (letters, digits, '-', '_', ':', '.')",
                );
            }
            if !(1..=900).contains(&f.timeout_seconds) {
                c.fail(format!("{at}.lambda.timeout_seconds"), "must be 1-900");
            }
        }
        (None, false) => {}
    }
    if lambda {
        if !tg.targets.is_empty() {
            c.fail(
                format!("{at}.targets"),
                "a lambda target group has its function, not targets",
            );
        }
        if tg.protocol_version != ProtocolVersion::HTTP1 {
            c.fail(
                format!("{at}.protocol_version"),
                "lambda target groups take HTTP1 only",
            );
        }
        if tg.stickiness.as_ref().is_some_and(|s| s.enabled) {
            c.fail(
                format!("{at}.stickiness"),
                "a lambda target group has one function: stickiness does not apply",
            );
        }
    }
    if tg.deregistration_delay_seconds > 3600 {
        c.fail(
            format!("{at}.deregistration_delay_seconds"),
            "must be 0-3600",
        );
    }
    if tg.slow_start_seconds != 0 && !(30..=900).contains(&tg.slow_start_seconds) {
        c.fail(
            format!("{at}.slow_start_seconds"),
            "must be 0 (off) or 30-900",
        );
    }
    if tg.slow_start_seconds != 0 && tg.load_balancing_algorithm == "least_outstanding_requests" {
        c.fail(
            format!("{at}.slow_start_seconds"),
            "slow start cannot be combined with least_outstanding_requests (as at ALB)",
        );
    }
    if tg.minimum_healthy_targets_count == 0 {
        c.fail(
            format!("{at}.minimum_healthy_targets_count"),
            "must be at least 1",
        );
    }
    if tg
        .minimum_healthy_targets_percentage
        .is_some_and(|p| !(1..=100).contains(&p))
    {
        c.fail(
            format!("{at}.minimum_healthy_targets_percentage"),
            "must be 1-100",
        );
    }
    if tg.anomaly_mitigation && tg.load_balancing_algorithm != "weighted_random" {
        c.fail(
            format!("{at}.anomaly_mitigation"),
            "only with load_balancing_algorithm = \"weighted_random\"",
        );
    }
}

fn check_target_groups(c: &mut Checker, tgs: &[TargetGroup]) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, tg) in tgs.iter().enumerate() {
        let at = format!("target_groups[{i}]");
        if !is_name(&tg.name, 32) {
            c.fail(
                format!("{at}.name"),
                "must be 1-32 letters, digits or '-', not starting or ending with '-'",
            );
        }
        if !names.insert(tg.name.clone()) {
            c.fail(
                format!("{at}.name"),
                format!("target group `{}` is defined twice", tg.name),
            );
        }
        check_target_kind(c, &at, tg);
        if ![
            "round_robin",
            "least_outstanding_requests",
            "weighted_random",
        ]
        .contains(&tg.load_balancing_algorithm.as_str())
        {
            c.fail(
                format!("{at}.load_balancing_algorithm"),
                "must be round_robin, least_outstanding_requests or weighted_random",
            );
        }
        if let Some(s) = &tg.stickiness {
            match (s.kind.as_str(), s.cookie_name.as_deref()) {
                ("lb_cookie", None) => {}
                ("lb_cookie", Some(_)) => c.fail(
                    format!("{at}.stickiness.cookie_name"),
                    "only for type = \"app_cookie\"",
                ),
                ("app_cookie", None) => c.fail(
                    format!("{at}.stickiness.cookie_name"),
                    "app_cookie stickiness needs the application's cookie name",
                ),
                ("app_cookie", Some(n)) => {
                    if n.is_empty()
                        || n.len() > 255
                        || !n
                            .bytes()
                            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
                    {
                        c.fail(
                            format!("{at}.stickiness.cookie_name"),
                            "must be a cookie name (1-255 token characters)",
                        );
                    } else if n.starts_with("AWSALB") {
                        c.fail(
                            format!("{at}.stickiness.cookie_name"),
                            "must not start with AWSALB (AWSALB, AWSALBAPP and AWSALBTG are the load balancer's)",
                        );
                    }
                }
                _ => c.fail(
                    format!("{at}.stickiness.type"),
                    "must be lb_cookie or app_cookie",
                ),
            }
            if !(1..=604_800).contains(&s.duration_seconds) {
                c.fail(
                    format!("{at}.stickiness.duration_seconds"),
                    "must be 1-604800",
                );
            }
        }
        let hc = &tg.health_check;
        let hat = format!("{at}.health_check");
        if !hc.path.starts_with('/') || hc.path.len() > 1024 {
            c.fail(
                format!("{hat}.path"),
                "an absolute path of at most 1024 characters",
            );
        }
        if hc.port != "traffic-port" && hc.port.parse::<u16>().map_or(true, |p| p == 0) {
            c.fail(format!("{hat}.port"), "traffic-port or 1-65535");
        }
        if !(1..=300).contains(&hc.interval_seconds) {
            c.fail(
                format!("{hat}.interval_seconds"),
                "must be 1-300 (ALB: 5-300)",
            );
        }
        if !(1..=120).contains(&hc.timeout_seconds)
            || hc.timeout_seconds >= hc.interval_seconds.max(2)
        {
            c.fail(
                format!("{hat}.timeout_seconds"),
                "must be 1-120 and less than interval_seconds",
            );
        }
        for (name, v) in [
            ("healthy_threshold_count", hc.healthy_threshold_count),
            ("unhealthy_threshold_count", hc.unhealthy_threshold_count),
        ] {
            if !(2..=10).contains(&v) {
                c.fail(format!("{hat}.{name}"), "must be 2-10");
            }
        }
        if !codes_ok(&hc.matcher, 200..=499) {
            c.fail(
                format!("{hat}.matcher"),
                "codes 200-499 as `200`, `200,202` or `200-299`",
            );
        }
        if !codes_ok(&hc.grpc_code, 0..=99) {
            c.fail(
                format!("{hat}.grpc_code"),
                "gRPC codes 0-99 as `12`, `0,12` or `0-99`",
            );
        }
        for (j, t) in tg.targets.iter().enumerate() {
            if t.id.trim().is_empty() {
                c.fail(
                    format!("{at}.targets[{j}].id"),
                    "must be an IP address or host name",
                );
            }
            match t.port.or(tg.port) {
                None => c.fail(
                    format!("{at}.targets[{j}].port"),
                    "no port: give the target a port or the group a default port",
                ),
                Some(0) => c.fail(format!("{at}.targets[{j}].port"), "must be 1-65535"),
                _ => {}
            }
        }
    }
    names
}

/// Certificate sources, for listeners and user pool domains alike.
fn check_certificates(c: &mut Checker, at: &str, certs: &[Certificate]) {
    for (j, cert) in certs.iter().enumerate() {
        let f = format!("{at}[{j}]");
        match (&cert.self_signed, &cert.cert_file, &cert.key_file) {
            (Some(names), None, None) => {
                if names.is_empty() || names.iter().any(|n| n.is_empty()) {
                    c.fail(
                        format!("{f}.self_signed"),
                        "list at least one non-empty name",
                    );
                }
            }
            (None, Some(_), Some(_)) => {}
            _ => c.fail(
                f,
                "give either self_signed = [names] or both cert_file and key_file",
            ),
        }
    }
}

/// A pool's domain: where it listens and whether secrets could cross a network in clear text.
fn check_domain(c: &mut Checker, at: &str, d: &Domain) {
    let listen: Option<std::net::SocketAddr> = d.listen.parse().ok();
    if listen.is_none() {
        c.fail(
            format!("{at}.listen"),
            "must be an address and port, e.g. 127.0.0.1:9000",
        );
    }
    let scheme = match parse_url(&d.base_url) {
        Some((scheme, host, path))
            if (scheme == "http" || scheme == "https") && (path.is_empty() || path == "/") =>
        {
            if scheme == "http" && !is_loopback_host(&host) && !d.allow_insecure_http {
                c.fail(
                    format!("{at}.base_url"),
                    "plain http off this machine would carry passwords, codes and tokens in clear text: use an https base_url (with certificates, or behind a TLS proxy), or set allow_insecure_http = true to accept that",
                );
            }
            Some(scheme)
        }
        _ => {
            c.fail(
                format!("{at}.base_url"),
                "must be an http(s) URL without a path, e.g. http://localhost:9000",
            );
            None
        }
    };
    if !d.certificates.is_empty() && scheme.as_deref() == Some("http") {
        c.fail(
            format!("{at}.certificates"),
            "the pool serves HTTPS with certificates: its base_url must be https",
        );
    }
    if d.certificates.is_empty()
        && !d.allow_insecure_http
        && listen.is_some_and(|a| !a.ip().is_loopback())
    {
        c.fail(
            format!("{at}.listen"),
            "plain HTTP on a non-loopback address would carry passwords and codes in clear text: set certificates to serve HTTPS, listen on a loopback address behind a TLS proxy, or set allow_insecure_http = true",
        );
    }
    check_certificates(c, &format!("{at}.certificates"), &d.certificates);
}

fn check_listener(c: &mut Checker, at: &str, l: &Listener, config: &Config, tgs: &HashSet<String>) {
    if l.address.parse::<std::net::IpAddr>().is_err() {
        c.fail(
            format!("{at}.address"),
            "must be an IP address, e.g. 0.0.0.0 or 127.0.0.1",
        );
    }
    match l.protocol {
        Protocol::HTTPS if l.certificates.is_empty() => c.fail(
            format!("{at}.certificates"),
            "an HTTPS listener needs at least one certificate, e.g. { self_signed = [\"localhost\"] }",
        ),
        Protocol::HTTP if !l.certificates.is_empty() => {
            c.fail(format!("{at}.certificates"), "an HTTP listener takes no certificates")
        }
        _ => {}
    }
    check_certificates(c, &format!("{at}.certificates"), &l.certificates);
    check_actions(
        c,
        &format!("{at}.default_actions"),
        &l.default_actions,
        l,
        config,
        tgs,
    );
    let mut priorities = HashSet::new();
    for (j, r) in l.rules.iter().enumerate() {
        let rat = format!("{at}.rules[{j}]");
        if !(1..=50000).contains(&r.priority) {
            c.fail(format!("{rat}.priority"), "must be 1-50000");
        } else if !priorities.insert(r.priority) {
            c.fail(
                format!("{rat}.priority"),
                format!(
                    "priority {} is used by another rule of this listener",
                    r.priority
                ),
            );
        }
        check_conditions(c, &rat, &r.conditions);
        check_actions(c, &format!("{rat}.actions"), &r.actions, l, config, tgs);
    }
}

fn check_conditions(c: &mut Checker, at: &str, conditions: &[Condition]) {
    if conditions.is_empty() {
        c.fail(
            format!("{at}.conditions"),
            "a rule needs at least one condition",
        );
    }
    let mut seen = HashSet::new();
    let mut wildcards = 0;
    let mut values = 0;
    let count_wild = |s: &str| s.bytes().filter(|b| *b == b'*' || *b == b'?').count();
    for (k, cond) in conditions.iter().enumerate() {
        let cat = format!("{at}.conditions[{k}]");
        let f = cond.field.as_str();
        if !CONDITION_FIELDS.contains(&f) {
            c.fail(
                format!("{cat}.field"),
                format!(
                    "unknown condition `{f}`: use {}",
                    CONDITION_FIELDS.join(", ")
                ),
            );
            continue;
        }
        let repeatable = f == "http-header" || f == "query-string";
        if !repeatable && !seen.insert(f) {
            c.fail(
                format!("{cat}.field"),
                format!("`{f}` may appear once per rule"),
            );
        }
        if f != "http-header" && cond.http_header_name.is_some() {
            c.fail(
                format!("{cat}.http_header_name"),
                "only for http-header conditions",
            );
        }
        if f == "query-string" {
            if !cond.values.is_empty() {
                c.fail(
                    format!("{cat}.values"),
                    "query-string takes `{ key, value }` pairs (`values = [{ key, value }]` or `query = [...]`), not strings",
                );
            }
            // ELBv2's `values = [{ key, value }]` and our `query = [...]` say the same thing.
            let written_as = if cond.query.is_empty() {
                "values"
            } else {
                "query"
            };
            if !cond.query.is_empty() && !cond.value_pairs.is_empty() {
                c.fail(
                    format!("{cat}.values"),
                    "give the pairs once: `values = [{ key, value }]` or `query = [...]`, not both",
                );
            } else if cond.query_pairs().is_empty() && cond.values.is_empty() {
                c.fail(
                    format!("{cat}.values"),
                    "list at least one { key, value } pair",
                );
            }
            values += cond.query_pairs().len();
            for (q, m) in cond.query_pairs().iter().enumerate() {
                for (what, text) in [("key", m.key.as_deref()), ("value", Some(m.value.as_str()))] {
                    if let Some(t) = text {
                        wildcards += count_wild(t);
                        if t.is_empty() || t.len() > 128 {
                            c.fail(
                                format!("{cat}.{written_as}[{q}].{what}"),
                                "must be 1-128 characters",
                            );
                        }
                    }
                }
            }
            continue;
        }
        if !cond.query.is_empty() {
            c.fail(format!("{cat}.query"), "only for query-string conditions");
        }
        if !cond.value_pairs.is_empty() {
            c.fail(
                format!("{cat}.values"),
                "`{ key, value }` pairs are only for query-string conditions; list strings",
            );
        }
        if cond.values.is_empty() {
            c.fail(format!("{cat}.values"), "list at least one value");
        }
        values += cond.values.len();
        if f == "http-header" {
            match cond.http_header_name.as_deref() {
                None => c.fail(
                    format!("{cat}.http_header_name"),
                    "required for http-header",
                ),
                Some(n) if n.eq_ignore_ascii_case("host") => c.fail(
                    format!("{cat}.http_header_name"),
                    "use a host-header condition for Host",
                ),
                Some(n)
                    if n.is_empty()
                        || n.len() > 40
                        || !n.bytes().all(|b| {
                            b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
                        }) =>
                {
                    c.fail(
                        format!("{cat}.http_header_name"),
                        "1-40 header-name characters",
                    )
                }
                _ => {}
            }
        }
        for (v, value) in cond.values.iter().enumerate() {
            let vat = format!("{cat}.values[{v}]");
            match f {
                "host-header" | "path-pattern" | "http-header" => {
                    wildcards += count_wild(value);
                }
                _ => {}
            }
            if value.is_empty() || value.len() > 128 {
                c.fail(vat, "must be 1-128 characters");
                continue;
            }
            match f {
                "host-header"
                    if !value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.*?".contains(&b)) =>
                {
                    c.fail(
                        vat,
                        "a host pattern may contain only A-Z, a-z, 0-9, '-', '.', '*' and '?'",
                    );
                }
                "path-pattern" => {
                    if !value.starts_with('/') && !value.starts_with('*') {
                        c.fail(vat, "a path pattern must start with '/' (or a wildcard)");
                    } else if !value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.$/~\"'@:+&*?".contains(&b))
                    {
                        c.fail(
                            vat,
                            "a path pattern may contain only A-Z a-z 0-9 _ - . $ / ~ \" ' @ : + & * ?",
                        );
                    }
                }
                "http-request-method"
                    if value.len() > 40
                        || !value
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_') =>
                {
                    c.fail(
                        vat,
                        "a method is 1-40 characters of A-Z, '-' and '_' (case-sensitive)",
                    );
                }
                "source-ip" => match value.parse::<ipnet::IpNet>() {
                    Ok(n) if n.to_string() == "255.255.255.255/32" => {
                        c.fail(vat, "255.255.255.255/32 is not allowed")
                    }
                    Ok(_) => {}
                    Err(_) => c.fail(vat, "a CIDR such as 10.0.0.0/8 or 2001:db8::/32"),
                },
                _ => {}
            }
        }
    }
    if values > 5 {
        c.fail(
            format!("{at}.conditions"),
            format!("{values} condition values; ALB allows 5 per rule"),
        );
    }
    if wildcards > 5 {
        c.fail(
            format!("{at}.conditions"),
            format!("{wildcards} wildcards; ALB allows 5 per rule"),
        );
    }
}

/// The condition types of ALB rules.
pub const CONDITION_FIELDS: [&str; 6] = [
    "host-header",
    "path-pattern",
    "http-header",
    "http-request-method",
    "query-string",
    "source-ip",
];

/// Puts actions in run order: by `order` when every action has one, else as listed.
pub fn ordered_actions(actions: &[Action]) -> Vec<&Action> {
    let mut v: Vec<&Action> = actions.iter().collect();
    if v.iter().all(|a| a.order().is_some()) {
        v.sort_by_key(|a| a.order());
    }
    v
}

fn check_actions(
    c: &mut Checker,
    at: &str,
    actions: &[Action],
    l: &Listener,
    config: &Config,
    tgs: &HashSet<String>,
) {
    if actions.is_empty() {
        c.fail(
            at,
            "a rule needs a terminal action (forward, redirect or fixed-response)",
        );
        return;
    }
    let with_order = actions.iter().filter(|a| a.order().is_some()).count();
    if with_order != 0 && with_order != actions.len() {
        c.fail(at, "give `order` on every action or on none");
    }
    let mut orders = HashSet::new();
    for (i, a) in actions.iter().enumerate() {
        if let Some(o) = a.order() {
            if !(1..=50000).contains(&o) {
                c.fail(format!("{at}[{i}].order"), "must be 1-50000");
            } else if !orders.insert(o) {
                c.fail(
                    format!("{at}[{i}].order"),
                    format!("order {o} is used twice"),
                );
            }
        }
    }
    let ordered = ordered_actions(actions);
    let index_of = |a: &Action| actions.iter().position(|x| std::ptr::eq(x, a)).unwrap_or(0);
    let terminals = ordered.iter().filter(|a| a.is_terminal()).count();
    if terminals == 0 {
        c.fail(
            at,
            "no terminal action: end the rule with forward, redirect or fixed-response",
        );
    } else if terminals > 1 {
        c.fail(
            at,
            "more than one terminal action: a rule has exactly one, and it runs last",
        );
    } else if let Some(last) = ordered.last()
        && !last.is_terminal()
    {
        c.fail(
            format!("{at}[{}]", index_of(last)),
            format!(
                "`{}` runs after the terminal action; the terminal action must be last",
                last.type_name()
            ),
        );
    }
    let auths = ordered.iter().filter(|a| !a.is_terminal()).count();
    if auths > 1 {
        c.fail(
            at,
            "at most one authenticate or jwt-validation action per rule",
        );
    }
    for a in &ordered {
        let i = index_of(a);
        let aat = format!("{at}[{i}]");
        match a {
            Action::Forward(f) => {
                if f.target_group.is_some() != f.target_groups.is_empty() {
                    c.fail(
                        aat.clone(),
                        "give target_group, or target_groups with weights",
                    );
                }
                if f.target_groups.len() > 5 {
                    c.fail(format!("{aat}.target_groups"), "at most 5 target groups");
                }
                if let Some(g) = &f.target_group
                    && !tgs.contains(g)
                {
                    c.fail(
                        format!("{aat}.target_group"),
                        format!("unknown target group `{g}`"),
                    );
                }
                let h2_groups = f
                    .target_group
                    .iter()
                    .chain(f.target_groups.iter().map(|w| &w.name))
                    .filter_map(|g| config.target_groups.iter().find(|t| &t.name == g))
                    .filter(|t| t.protocol_version != ProtocolVersion::HTTP1)
                    .map(|t| t.name.clone())
                    .collect::<Vec<_>>();
                if let Some(g) = h2_groups.first() {
                    if l.protocol != Protocol::HTTPS {
                        c.fail(
                            aat.clone(),
                            format!("target group `{g}` speaks HTTP/2 or gRPC: it needs an HTTPS listener (clients reach HTTP/2 by ALPN)"),
                        );
                    }
                    if actions.iter().any(|a| {
                        matches!(
                            a,
                            Action::AuthenticateCognito(_) | Action::AuthenticateOidc(_)
                        )
                    }) {
                        c.fail(
                            aat.clone(),
                            format!("target group `{g}` speaks HTTP/2 or gRPC: browser login (authenticate-*) does not apply; use jwt-validation"),
                        );
                    }
                }
                let mut names = HashSet::new();
                for (k, w) in f.target_groups.iter().enumerate() {
                    if !tgs.contains(&w.name) {
                        c.fail(
                            format!("{aat}.target_groups[{k}].name"),
                            format!("unknown target group `{}`", w.name),
                        );
                    }
                    if !names.insert(&w.name) {
                        c.fail(format!("{aat}.target_groups[{k}].name"), "listed twice");
                    }
                    if w.weight > 999 {
                        c.fail(format!("{aat}.target_groups[{k}].weight"), "must be 0-999");
                    }
                }
                if !f.target_groups.is_empty() && f.target_groups.iter().all(|w| w.weight == 0) {
                    c.fail(
                        format!("{aat}.target_groups"),
                        "at least one weight above 0",
                    );
                }
                if let Some(s) = &f.stickiness
                    && !(1..=604_800).contains(&s.duration_seconds)
                {
                    c.fail(
                        format!("{aat}.stickiness.duration_seconds"),
                        "must be 1-604800",
                    );
                }
            }
            Action::FixedResponse(f) => {
                if !matches!(f.status_code / 100, 2 | 4 | 5) || f.status_code > 599 {
                    c.fail(format!("{aat}.status_code"), "must be 2XX, 4XX or 5XX");
                }
                if let Some(ct) = &f.content_type
                    && !FIXED_RESPONSE_CONTENT_TYPES.contains(&ct.as_str())
                {
                    c.fail(
                        format!("{aat}.content_type"),
                        format!("must be one of {}", FIXED_RESPONSE_CONTENT_TYPES.join(", ")),
                    );
                }
                if f.message_body
                    .as_ref()
                    .is_some_and(|b| b.chars().count() > 1024)
                {
                    c.fail(format!("{aat}.message_body"), "at most 1024 characters");
                }
            }
            Action::Redirect(r) => check_redirect(c, &aat, r, l.protocol),
            Action::AuthenticateCognito(a) => {
                if l.protocol != Protocol::HTTPS {
                    c.fail(
                        aat.clone(),
                        "authenticate actions are allowed only on HTTPS listeners",
                    );
                }
                check_session(c, &aat, &a.session());
                check_cognito(c, &aat, a, config);
            }
            Action::JwtValidation(j) => {
                if l.protocol != Protocol::HTTPS {
                    c.fail(
                        aat.clone(),
                        "jwt-validation is allowed only on HTTPS listeners",
                    );
                }
                if j.jwks_endpoint.len() > 256 || !is_https_or_loopback(&j.jwks_endpoint) {
                    c.fail(
                        format!("{aat}.jwks_endpoint"),
                        "an https URL of at most 256 characters (http only for loopback hosts)",
                    );
                }
                if j.issuer.is_empty() || j.issuer.len() > 256 {
                    c.fail(format!("{aat}.issuer"), "1-256 characters");
                }
                if j.additional_claims.len() > 10 {
                    c.fail(format!("{aat}.additional_claims"), "at most 10");
                }
                for (k, cl) in j.additional_claims.iter().enumerate() {
                    let cat = format!("{aat}.additional_claims[{k}]");
                    if !["single-string", "string-array", "space-separated-values"]
                        .contains(&cl.format.as_str())
                    {
                        c.fail(
                            format!("{cat}.format"),
                            "must be single-string, string-array or space-separated-values",
                        );
                    }
                    if ["exp", "iss", "nbf", "iat"].contains(&cl.name.as_str())
                        || cl.name.is_empty()
                    {
                        c.fail(
                            format!("{cat}.name"),
                            "exp, iss, nbf and iat are always checked and cannot be listed",
                        );
                    }
                    if cl.values.is_empty() || cl.values.len() > 10 {
                        c.fail(format!("{cat}.values"), "1-10 values");
                    }
                    for (v, val) in cl.values.iter().enumerate() {
                        if val.is_empty()
                            || val.len() > 256
                            || (cl.format == "space-separated-values" && val.contains(' '))
                        {
                            c.fail(
                                format!("{cat}.values[{v}]"),
                                "1-256 characters (no spaces for space-separated-values)",
                            );
                        }
                    }
                }
            }
            Action::AuthenticateOidc(a) => {
                if l.protocol != Protocol::HTTPS {
                    c.fail(
                        aat.clone(),
                        "authenticate actions are allowed only on HTTPS listeners",
                    );
                }
                check_session(c, &aat, &a.session());
                let endpoints = [
                    &a.authorization_endpoint,
                    &a.token_endpoint,
                    &a.user_info_endpoint,
                ];
                let given = endpoints.iter().filter(|e| e.is_some()).count();
                if given != 0 && given != 3 {
                    c.fail(
                        aat.clone(),
                        "give authorization_endpoint, token_endpoint and user_info_endpoint together, or none to discover them from the issuer",
                    );
                }
                for (name, url) in [
                    ("issuer", Some(&a.issuer)),
                    ("authorization_endpoint", a.authorization_endpoint.as_ref()),
                    ("token_endpoint", a.token_endpoint.as_ref()),
                    ("user_info_endpoint", a.user_info_endpoint.as_ref()),
                    ("revocation_endpoint", a.revocation_endpoint.as_ref()),
                    ("end_session_endpoint", a.end_session_endpoint.as_ref()),
                ] {
                    if let Some(url) = url
                        && !is_https_or_loopback(url)
                    {
                        c.fail(
                            format!("{aat}.{name}"),
                            "must be an https URL (http only for loopback hosts)",
                        );
                    }
                }
                if a.client_id.is_empty() {
                    c.fail(format!("{aat}.client_id"), "must not be empty");
                }
                match (&a.client_secret, &a.client_secret_env) {
                    (Some(_), None) | (None, Some(_)) => {}
                    _ => c.fail(
                        aat.clone(),
                        "give exactly one of client_secret and client_secret_env",
                    ),
                }
            }
        }
    }
}

fn check_redirect(c: &mut Checker, at: &str, r: &RedirectAction, listener: Protocol) {
    if r.status_code != "HTTP_301" && r.status_code != "HTTP_302" {
        c.fail(format!("{at}.status_code"), "must be HTTP_301 or HTTP_302");
    }
    if let Some(p) = &r.protocol {
        if !["HTTP", "HTTPS", "#{protocol}"].contains(&p.as_str()) {
            c.fail(
                format!("{at}.protocol"),
                "must be HTTP, HTTPS or #{protocol}",
            );
        } else if p == "HTTP" && listener == Protocol::HTTPS {
            c.fail(
                format!("{at}.protocol"),
                "redirecting from HTTPS to HTTP is not allowed",
            );
        }
    }
    if let Some(p) = &r.port
        && p != "#{port}"
        && !p.parse::<u16>().is_ok_and(|p| p >= 1)
    {
        c.fail(format!("{at}.port"), "must be 1-65535 or #{port}");
    }
    if let Some(h) = &r.host
        && (h.is_empty() || h.len() > 128)
    {
        c.fail(format!("{at}.host"), "must be 1-128 characters");
    }
    if let Some(p) = &r.path
        && (!p.starts_with('/') || p.len() > 128)
    {
        c.fail(
            format!("{at}.path"),
            "must start with '/' and be at most 128 characters",
        );
    }
    if let Some(q) = &r.query
        && (q.starts_with('?') || q.len() > 128)
    {
        c.fail(
            format!("{at}.query"),
            "at most 128 characters, without the leading '?'",
        );
    }
    let changes = r.protocol.as_deref().is_some_and(|p| p != "#{protocol}")
        || r.port.as_deref().is_some_and(|p| p != "#{port}")
        || r.host.as_deref().is_some_and(|h| h != "#{host}")
        || r.path.as_deref().is_some_and(|p| p != "/#{path}");
    if !changes {
        c.fail(
            at,
            "the redirect would loop: change at least one of protocol, port, host or path",
        );
    }
}

fn check_session(c: &mut Checker, at: &str, s: &SessionSettings) {
    if !(1..=604_800).contains(&s.session_timeout) {
        c.fail(
            format!("{at}.session_timeout"),
            "must be 1-604800 seconds (7 days)",
        );
    }
    if s.authentication_request_extra_params.len() > 10 {
        c.fail(
            format!("{at}.authentication_request_extra_params"),
            "at most 10 parameters",
        );
    }
    if let Some(p) = &s.logout_path
        && (!p.starts_with('/') || p == "/oauth2/idpresponse" || p.len() > 128)
    {
        c.fail(
            format!("{at}.logout_path"),
            "must be a path starting with '/' (and not /oauth2/idpresponse)",
        );
    }
    if let Some(u) = &s.logout_redirect_uri
        && let Some(reason) = callback_url_problem(u)
    {
        c.fail(format!("{at}.logout_redirect_uri"), reason);
    }
    if s.require_claims.len() > 10 {
        c.fail(format!("{at}.require_claims"), "at most 10 claims");
    }
    for (k, v) in &s.require_claims {
        if v.is_empty() {
            c.fail(
                format!("{at}.require_claims.{k}"),
                "list at least one accepted value",
            );
        }
    }
    let reserved = [
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    ];
    for k in s.authentication_request_extra_params.keys() {
        if reserved.contains(&k.as_str()) {
            c.fail(
                format!("{at}.authentication_request_extra_params.{k}"),
                "this parameter is set by the load balancer",
            );
        }
    }
    let name = &s.session_cookie_name;
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        c.fail(
            format!("{at}.session_cookie_name"),
            "1-64 letters, digits, '-', '_' or '.'",
        );
    }
    if !s.scope.split(' ').any(|x| x == "openid") {
        c.fail(
            format!("{at}.scope"),
            "must include `openid`: without it the IdP returns no ID token and every login fails",
        );
    }
}

fn check_cognito(c: &mut Checker, at: &str, a: &AuthenticateCognito, config: &Config) {
    let Some(pool) = config.user_pools.iter().find(|p| p.name == a.user_pool) else {
        c.fail(
            format!("{at}.user_pool"),
            format!("unknown user pool `{}`", a.user_pool),
        );
        return;
    };
    let Some(client) = pool
        .clients
        .iter()
        .find(|cl| cl.client_id == a.user_pool_client_id)
    else {
        c.fail(
            format!("{at}.user_pool_client_id"),
            format!(
                "user pool `{}` has no client `{}`",
                pool.name, a.user_pool_client_id
            ),
        );
        return;
    };
    if !client.generate_secret && client.client_secret.is_none() {
        c.fail(
            format!("{at}.user_pool_client_id"),
            format!("client `{}` has no secret; the load balancer needs one (set generate_secret = true)", client.client_id),
        );
    }
    if !client.allowed_oauth_flows.iter().any(|f| f == "code") {
        c.fail(
            format!("{at}.user_pool_client_id"),
            format!("client `{}` does not allow the code flow", client.client_id),
        );
    }
    if a.logout_path.is_some() {
        match &a.logout_redirect_uri {
            None => c.fail(
                format!("{at}.logout_redirect_uri"),
                "a Cognito pool signs out only to a registered logout URL: set logout_redirect_uri",
            ),
            Some(u) if !client.logout_urls.contains(u) => c.fail(
                format!("{at}.logout_redirect_uri"),
                format!("not one of client `{}`'s logout_urls", client.client_id),
            ),
            _ => {}
        }
    }
    for scope in a.scope.split(' ').filter(|s| !s.is_empty()) {
        if !client.allowed_oauth_scopes.iter().any(|s| s == scope) {
            c.fail(
                format!("{at}.scope"),
                format!(
                    "client `{}` is not allowed scope `{scope}`",
                    client.client_id
                ),
            );
        }
    }
}

fn check_user_pools(c: &mut Checker, pools: &[UserPool]) {
    let mut names = HashSet::new();
    let mut listens = HashMap::new();
    for (i, p) in pools.iter().enumerate() {
        let at = format!("user_pools[{i}]");
        if p.name.is_empty() || !names.insert(p.name.clone()) {
            c.fail(format!("{at}.name"), "must be non-empty and unique");
        }
        if let Some(id) = &p.id
            && !is_pool_id(id)
        {
            c.fail(
                format!("{at}.id"),
                "must look like <region>_<letters and digits>, e.g. us-east-1_Demo12345",
            );
        }
        check_domain(c, &format!("{at}.domain"), &p.domain);
        if p.domain.listen.parse::<std::net::SocketAddr>().is_ok()
            && let Some(other) = listens.insert(p.domain.listen.clone(), i)
        {
            c.fail(
                format!("{at}.domain.listen"),
                format!("also used by user_pools[{other}]"),
            );
        }
        if !(300..=86400).contains(&p.token_validity_seconds) {
            c.fail(
                format!("{at}.token_validity_seconds"),
                "must be 300-86400 (5 minutes to 1 day)",
            );
        }
        let mut custom = BTreeSet::new();
        let mut ids = HashSet::new();
        for (j, rs) in p.resource_servers.iter().enumerate() {
            let rat = format!("{at}.resource_servers[{j}]");
            if rs.identifier.is_empty() || rs.identifier.len() > 256 || rs.identifier.contains(' ')
            {
                c.fail(
                    format!("{rat}.identifier"),
                    "1-256 characters without spaces",
                );
            }
            if !ids.insert(rs.identifier.clone()) {
                c.fail(format!("{rat}.identifier"), "defined twice");
            }
            if rs.scopes.len() > 100 {
                c.fail(
                    format!("{rat}.scopes"),
                    "at most 100 scopes per resource server",
                );
            }
            for (k, s) in rs.scopes.iter().enumerate() {
                if s.name.is_empty() || s.name.len() > 256 || s.name.contains([' ', '/']) {
                    c.fail(
                        format!("{rat}.scopes[{k}].name"),
                        "1-256 characters without spaces or '/'",
                    );
                }
                if !custom.insert(format!("{}/{}", rs.identifier, s.name)) {
                    c.fail(format!("{rat}.scopes[{k}].name"), "defined twice");
                }
            }
        }
        let mut client_ids = HashSet::new();
        for (j, cl) in p.clients.iter().enumerate() {
            check_client(
                c,
                &format!("{at}.clients[{j}]"),
                cl,
                &custom,
                &mut client_ids,
            );
        }
        check_identity_providers(c, &at, p);
        let mut group_names = HashSet::new();
        for (j, g) in p.groups.iter().enumerate() {
            if g.name.is_empty() || g.name.len() > 128 || g.name.chars().any(char::is_control) {
                c.fail(format!("{at}.groups[{j}].name"), "1-128 characters");
            } else if !group_names.insert(g.name.clone()) {
                c.fail(format!("{at}.groups[{j}].name"), "defined twice");
            }
            if g.description.as_ref().is_some_and(|d| d.len() > 2048) {
                c.fail(
                    format!("{at}.groups[{j}].description"),
                    "at most 2048 characters",
                );
            }
        }
        for (j, k) in p.access_keys.iter().enumerate() {
            let kat = format!("{at}.access_keys[{j}]");
            if !(16..=128).contains(&k.access_key_id.len())
                || !k.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                c.fail(format!("{kat}.access_key_id"), "16-128 letters and digits");
            }
            if k.secret_access_key.is_some() == k.secret_access_key_env.is_some() {
                c.fail(
                    kat.clone(),
                    "give exactly one of secret_access_key and secret_access_key_env",
                );
            }
            if k.secret_access_key.as_ref().is_some_and(|s| s.len() < 16) {
                c.fail(format!("{kat}.secret_access_key"), "at least 16 characters");
            }
        }
        let rl = &p.rate_limits;
        for (name, b) in [
            ("per_ip", rl.per_ip),
            ("per_user", rl.per_user),
            ("failed_client_auth", rl.failed_client_auth),
        ] {
            if !(1..=10_000).contains(&b.burst) {
                c.fail(format!("{at}.rate_limits.{name}.burst"), "must be 1-10000");
            }
            if !(1..=60_000).contains(&b.per_minute) {
                c.fail(
                    format!("{at}.rate_limits.{name}.per_minute"),
                    "must be 1-60000",
                );
            }
        }
        if rl.hash_queue > 10_000 {
            c.fail(format!("{at}.rate_limits.hash_queue"), "must be 0-10000");
        }
        if !(1..=64).contains(&rl.hash_workers) {
            c.fail(
                format!("{at}.rate_limits.hash_workers"),
                "must be 1-64 (each worker holds 19 MiB while it hashes)",
            );
        }
        let pp = &p.password_policy;
        if !(6..=99).contains(&pp.minimum_length) {
            c.fail(
                format!("{at}.password_policy.minimum_length"),
                "must be 6-99",
            );
        }
        if pp.temporary_password_validity_days > 365 {
            c.fail(
                format!("{at}.password_policy.temporary_password_validity_days"),
                "must be 0-365",
            );
        }
        if let Some(smtp) = &p.messages.smtp {
            let sat = format!("{at}.messages.smtp");
            if smtp.host.is_empty() || smtp.host.contains(char::is_whitespace) {
                c.fail(format!("{sat}.host"), "a host name or address");
            }
            if !["starttls", "tls", "none"].contains(&smtp.security.as_str()) {
                c.fail(format!("{sat}.security"), "must be starttls, tls or none");
            } else if smtp.security == "none"
                && smtp.username.is_some()
                && !is_loopback_host(smtp.host.trim_start_matches('[').trim_end_matches(']'))
                && smtp
                    .host
                    .parse::<std::net::Ipv6Addr>()
                    .map_or(true, |ip| !ip.is_loopback())
            {
                c.fail(
                    format!("{sat}.security"),
                    "AUTH over a plain connection to another machine would send the SMTP password in clear text: use starttls or tls",
                );
            }
            if !smtp.from.contains('@') || smtp.from.contains(['\r', '\n', '<', '>']) {
                c.fail(
                    format!("{sat}.from"),
                    "an email address such as no-reply@example.com",
                );
            }
            let passwords =
                usize::from(smtp.password_env.is_some()) + usize::from(smtp.password.is_some());
            if smtp.username.is_some() != (passwords == 1) || passwords > 1 {
                c.fail(
                    sat.clone(),
                    "give username with one of password_env and password, or none of them",
                );
            }
            if p.messages.outbox.is_some() {
                c.fail(format!("{at}.messages"), "give outbox or smtp, not both");
            }
        }
        if !["OFF", "OPTIONAL", "ON"].contains(&p.mfa_configuration.as_str()) {
            c.fail(
                format!("{at}.mfa_configuration"),
                "must be OFF, OPTIONAL or ON",
            );
        }
        if p.custom_attributes.len() > 50 {
            c.fail(format!("{at}.custom_attributes"), "at most 50");
        }
        for (j, a) in p.custom_attributes.iter().enumerate() {
            if a.name.is_empty()
                || a.name.len() > 20
                || !a
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
            {
                c.fail(
                    format!("{at}.custom_attributes[{j}].name"),
                    "1-20 letters, digits, '_' or '-' (without the custom: prefix)",
                );
            }
            if !["String", "Number", "Boolean", "DateTime"]
                .contains(&a.attribute_data_type.as_str())
            {
                c.fail(
                    format!("{at}.custom_attributes[{j}].attribute_data_type"),
                    "must be String, Number, Boolean or DateTime",
                );
            }
        }
        let mut users = HashSet::new();
        for (j, u) in p.users.iter().enumerate() {
            let uat = format!("{at}.users[{j}]");
            if u.username.is_empty()
                || u.username.len() > 128
                || u.username.chars().any(char::is_whitespace)
            {
                c.fail(format!("{uat}.username"), "1-128 characters without spaces");
            } else if !users.insert(u.username.clone()) {
                c.fail(format!("{uat}.username"), "defined twice");
            }
            if u.password.is_some() == u.password_env.is_some() {
                c.fail(uat.clone(), "give exactly one of password and password_env");
            }
            if u.groups.len() > 100 {
                c.fail(format!("{uat}.groups"), "a user is in at most 100 groups");
            }
            for (k, g) in u.groups.iter().enumerate() {
                if !group_names.contains(g) {
                    c.fail(format!("{uat}.groups[{k}]"), format!("unknown group `{g}`"));
                }
            }
            for k in u.attributes.keys() {
                if k == "sub" {
                    c.fail(
                        format!("{uat}.attributes.sub"),
                        "sub is assigned by the pool",
                    );
                } else if let Some(name) = k.strip_prefix("custom:")
                    && !p.custom_attributes.iter().any(|a| a.name == name)
                {
                    c.fail(
                        format!("{uat}.attributes.{k}"),
                        format!("declare it first: custom_attributes = [{{ name = \"{name}\" }}]"),
                    );
                }
            }
        }
    }
}

/// A pool's external providers, and the clients' `supported_identity_providers` naming them.
fn check_identity_providers(c: &mut Checker, at: &str, p: &UserPool) {
    let custom: BTreeSet<String> = p
        .custom_attributes
        .iter()
        .map(|a| format!("custom:{}", a.name))
        .collect();
    if p.identity_providers.len() > crate::identity_provider::MAX_IDENTITY_PROVIDERS {
        c.fail(format!("{at}.identity_providers"), "at most 50");
    }
    let mut names = HashSet::new();
    let mut identifiers = HashMap::new();
    for (j, ip) in p.identity_providers.iter().enumerate() {
        let pat = format!("{at}.identity_providers[{j}]");
        for (field, reason) in crate::identity_provider_problems(ip, &custom) {
            c.fail(format!("{pat}.{field}"), reason);
        }
        if !names.insert(ip.name.clone()) {
            c.fail(format!("{pat}.name"), "defined twice");
        }
        for (k, id) in ip.idp_identifiers.iter().enumerate() {
            if let Some(other) = identifiers.insert(id.to_ascii_lowercase(), ip.name.clone())
                && other != ip.name
            {
                c.fail(
                    format!("{pat}.idp_identifiers[{k}]"),
                    format!("also an identifier of provider `{other}`"),
                );
            }
        }
    }
    for (j, cl) in p.clients.iter().enumerate() {
        let Some(list) = &cl.supported_identity_providers else {
            continue;
        };
        for (k, name) in list.iter().enumerate() {
            if name != crate::COGNITO_PROVIDER && !names.contains(name) {
                c.fail(
                    format!("{at}.clients[{j}].supported_identity_providers[{k}]"),
                    format!("`{name}` is neither COGNITO nor a provider in identity_providers"),
                );
            }
        }
    }
}

fn check_client(
    c: &mut Checker,
    at: &str,
    cl: &Client,
    custom: &BTreeSet<String>,
    seen: &mut HashSet<String>,
) {
    if cl.client_id.is_empty()
        || cl.client_id.len() > 128
        || !cl
            .client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-".contains(&b))
    {
        c.fail(
            format!("{at}.client_id"),
            "1-128 letters, digits, '_', '+' or '-'",
        );
    } else if !seen.insert(cl.client_id.clone()) {
        c.fail(format!("{at}.client_id"), "defined twice");
    }
    match (&cl.client_secret, cl.generate_secret) {
        (Some(_), true) => c.fail(at, "give client_secret or generate_secret = true, not both"),
        (Some(s), false) if !(24..=64).contains(&s.len()) => {
            c.fail(format!("{at}.client_secret"), "must be 24-64 characters")
        }
        _ => {}
    }
    for (k, f) in cl.allowed_oauth_flows.iter().enumerate() {
        if f != "code" && f != "implicit" && f != "client_credentials" {
            c.fail(
                format!("{at}.allowed_oauth_flows[{k}]"),
                format!("unsupported flow `{f}` (supported: code, implicit, client_credentials)"),
            );
        }
    }
    if cl
        .allowed_oauth_flows
        .iter()
        .any(|f| f == "client_credentials")
    {
        if cl.allowed_oauth_flows.len() > 1 {
            c.fail(
                format!("{at}.allowed_oauth_flows"),
                "client_credentials must be the client's only flow",
            );
        }
        if !cl.generate_secret && cl.client_secret.is_none() {
            c.fail(
                at,
                "a client_credentials client needs a secret (set generate_secret = true)",
            );
        }
        for (k, s) in cl.allowed_oauth_scopes.iter().enumerate() {
            if RESERVED_SCOPES.contains(&s.as_str()) {
                c.fail(
                    format!("{at}.allowed_oauth_scopes[{k}]"),
                    format!(
                        "`{s}` is a user scope; client_credentials tokens carry only custom scopes"
                    ),
                );
            }
        }
    }
    for (k, s) in cl.allowed_oauth_scopes.iter().enumerate() {
        if !RESERVED_SCOPES.contains(&s.as_str()) && !custom.contains(s) {
            c.fail(
                format!("{at}.allowed_oauth_scopes[{k}]"),
                format!("scope `{s}` is neither a standard scope nor defined by a resource server of this pool"),
            );
        }
    }
    if cl.callback_urls.len() > 100 {
        c.fail(format!("{at}.callback_urls"), "at most 100");
    }
    if let Some(d) = &cl.default_redirect_uri
        && !cl.callback_urls.contains(d)
    {
        c.fail(
            format!("{at}.default_redirect_uri"),
            "must be one of callback_urls",
        );
    }
    for (k, u) in cl.callback_urls.iter().enumerate() {
        if let Some(reason) = callback_url_problem(u) {
            c.fail(format!("{at}.callback_urls[{k}]"), reason);
        }
    }
    let bounded = |v: Option<u64>, unit: crate::TimeUnit, min: u64, max: u64| {
        v.is_none_or(|v| (min..=max).contains(&(v.saturating_mul(unit.seconds()))))
    };
    let u = cl.token_validity_units;
    if !bounded(cl.access_token_validity, u.access_token, 300, 86400) {
        c.fail(
            format!("{at}.access_token_validity"),
            "must be 5 minutes to 1 day in token_validity_units.access_token",
        );
    }
    if !bounded(cl.id_token_validity, u.id_token, 300, 86400) {
        c.fail(
            format!("{at}.id_token_validity"),
            "must be 5 minutes to 1 day in token_validity_units.id_token",
        );
    }
    if cl.refresh_token_validity != Some(0)
        && !bounded(
            cl.refresh_token_validity,
            u.refresh_token,
            3600,
            3650 * 86400,
        )
    {
        c.fail(
            format!("{at}.refresh_token_validity"),
            "must be 1 hour to 10 years in token_validity_units.refresh_token (0 means 30 days)",
        );
    }
    if let Some(r) = &cl.refresh_token_rotation {
        if r.feature != "ENABLED" && r.feature != "DISABLED" {
            c.fail(
                format!("{at}.refresh_token_rotation.feature"),
                "must be ENABLED or DISABLED",
            );
        }
        if r.retry_grace_period_seconds > 60 {
            c.fail(
                format!("{at}.refresh_token_rotation.retry_grace_period_seconds"),
                "must be 0-60",
            );
        }
    }
    if let Some(flows) = &cl.explicit_auth_flows {
        for (k, f) in flows.iter().enumerate() {
            if !EXPLICIT_AUTH_FLOWS.contains(&f.as_str()) {
                c.fail(
                    format!("{at}.explicit_auth_flows[{k}]"),
                    format!(
                        "unknown flow `{f}` (known: {})",
                        EXPLICIT_AUTH_FLOWS.join(", ")
                    ),
                );
            }
        }
    }
    if cl.prevent_user_existence_errors != "ENABLED" && cl.prevent_user_existence_errors != "LEGACY"
    {
        c.fail(
            format!("{at}.prevent_user_existence_errors"),
            "must be ENABLED or LEGACY",
        );
    }
    if !(3..=15).contains(&cl.auth_session_validity) {
        c.fail(
            format!("{at}.auth_session_validity"),
            "must be 3-15 (minutes)",
        );
    }
    if cl.logo_url.as_ref().is_some_and(|l| {
        !(l.starts_with("https://") || l.starts_with("data:image/") || l.starts_with('/'))
            || l.len() > 64 * 1024
            || l.contains(['"', '<', '>'])
    }) {
        c.fail(
            format!("{at}.logo_url"),
            "must be an https:, data:image/ or absolute-path URL under 64 KB without quotes or angle brackets",
        );
    }
    if let Some(css) = &cl.css
        && (css.len() > 4096 || css.contains('<'))
    {
        c.fail(format!("{at}.css"), "at most 4096 bytes, without `<`");
    }
    if cl.logout_urls.len() > 100 {
        c.fail(format!("{at}.logout_urls"), "at most 100");
    }
    for (k, u) in cl.logout_urls.iter().enumerate() {
        if let Some(reason) = callback_url_problem(u) {
            c.fail(format!("{at}.logout_urls[{k}]"), reason);
        }
    }
    if let Some(u) = &cl.backchannel_logout_uri
        && (!is_https_or_loopback(u) || u.contains('#') || u.len() > 1024)
    {
        c.fail(
            format!("{at}.backchannel_logout_uri"),
            "must be an https URL (http only for localhost, 127.0.0.1 and [::1]) without a fragment, at most 1024 bytes",
        );
    }
}

/// Cognito's `ExplicitAuthFlows` values.
pub const EXPLICIT_AUTH_FLOWS: [&str; 7] = [
    "ALLOW_USER_SRP_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
    "ALLOW_CUSTOM_AUTH",
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "ALLOW_USER_AUTH",
    "ADMIN_NO_SRP_AUTH",
];

/// Every problem of an app client created at run time (admin API): `(field, reason)`.
pub fn client_problems(cl: &Client, custom_scopes: &BTreeSet<String>) -> Vec<(String, String)> {
    let file = Path::new("");
    let mut c = Checker {
        file,
        errors: Vec::new(),
    };
    check_client(&mut c, "", cl, custom_scopes, &mut HashSet::new());
    c.errors
        .into_iter()
        .map(|e| (e.field.trim_start_matches('.').to_string(), e.reason))
        .collect()
}

/// Why a callback URL is not acceptable to a pool, if it is not.
pub fn callback_url_problem(u: &str) -> Option<&'static str> {
    if u.contains('#') {
        return Some("must not contain a fragment");
    }
    match parse_url(u) {
        None => Some("must be an absolute URL"),
        Some((scheme, host, _)) => match scheme.as_str() {
            "https" => None,
            "http" if is_loopback_host(&host) => None,
            "http" => {
                Some("must be https (http is allowed only for localhost, 127.0.0.1 and [::1])")
            }
            _ => None,
        },
    }
}

fn is_https_or_loopback(u: &str) -> bool {
    match parse_url(u) {
        Some((s, _, _)) if s == "https" => true,
        Some((s, h, _)) if s == "http" => is_loopback_host(&h),
        _ => false,
    }
}

/// Whether a host (without port) names this machine.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Splits an absolute URL into (lowercase scheme, host without port, path and query).
pub fn parse_url(u: &str) -> Option<(String, String, String)> {
    let uri: http::Uri = u.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_string();
    if host.is_empty() {
        return None;
    }
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    let pq = if pq == "/" && !u.ends_with('/') {
        ""
    } else {
        pq
    };
    Some((scheme, host, pq.to_string()))
}

fn is_pool_id(id: &str) -> bool {
    let Some((region, rest)) = id.split_once('_') else {
        return false;
    };
    !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        && id.len() <= 55
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_str;

    const BASE: &str = r#"
[load_balancer]
name = "demo"

[[listeners]]
protocol = "HTTPS"
port = 8443
certificates = [{ self_signed = ["localhost"] }]
default_actions = [{ type = "fixed-response", status_code = 404 }]

[[listeners.rules]]
priority = 10
conditions = [{ field = "path-pattern", values = ["/tasks", "/tasks/*"] }]
actions = [
  { type = "authenticate-cognito", user_pool = "demo", user_pool_client_id = "tasks-web", scope = "openid tasks/read" },
  { type = "forward", target_group = "tasks" },
]

[[target_groups]]
name = "tasks"
targets = [{ id = "127.0.0.1", port = 3000 }]

[[user_pools]]
name = "demo"
domain = { listen = "127.0.0.1:9000", base_url = "http://localhost:9000" }
resource_servers = [{ identifier = "tasks", scopes = [{ name = "read" }] }]
clients = [{ client_id = "tasks-web", generate_secret = true, allowed_oauth_flows = ["code"],
             allowed_oauth_scopes = ["openid", "tasks/read"],
             callback_urls = ["https://localhost:8443/oauth2/idpresponse"] }]
"#;

    fn errors(text: &str) -> Vec<String> {
        match load_str(text, Path::new("lb.toml"), Path::new(".")) {
            Ok(_) => vec![],
            Err(crate::LoadError::Invalid(es)) => es.iter().map(|e| e.to_string()).collect(),
            Err(e) => panic!("expected validation errors, got {e}"),
        }
    }

    fn assert_error(text: &str, field: &str, reason_part: &str) {
        let es = errors(text);
        assert!(
            es.iter()
                .any(|e| e.starts_with(&format!("lb.toml: {field}: ")) && e.contains(reason_part)),
            "wanted {field}: ..{reason_part}.. in {es:#?}"
        );
    }

    #[test]
    fn identity_providers_are_checked_and_clients_name_only_existing_ones() {
        let with = |providers: &str, supported: &str| {
            BASE.replace(
                "allowed_oauth_flows = [\"code\"],",
                &format!(
                    "allowed_oauth_flows = [\"code\"], supported_identity_providers = {supported},"
                ),
            ) + providers
        };
        let partner = r#"
[[user_pools.identity_providers]]
name = "Partner"
type = "OIDC"
client_id = "pool"
client_secret = "s"
oidc_issuer = "https://idp.partner.example"
idp_identifiers = ["partner.example"]
"#;
        assert_eq!(
            errors(&with(partner, r#"["COGNITO", "Partner"]"#)),
            Vec::<String>::new()
        );
        assert_error(
            &with(partner, r#"["Nobody"]"#),
            "user_pools[0].clients[0].supported_identity_providers[0]",
            "neither COGNITO nor a provider",
        );
        assert_error(
            &with(&partner.replace("Partner", "Part_ner"), "[\"COGNITO\"]"),
            "user_pools[0].identity_providers[0].name",
            "no '_'",
        );
        assert_error(
            &with(
                &partner.replace("https://idp", "http://idp"),
                "[\"COGNITO\"]",
            ),
            "user_pools[0].identity_providers[0].oidc_issuer",
            "https",
        );
        let twice = format!(
            "{partner}{}",
            partner.replace("name = \"Partner\"", "name = \"Other\"")
        );
        assert_error(
            &with(&twice, "[\"COGNITO\"]"),
            "user_pools[0].identity_providers[1].idp_identifiers[0]",
            "also an identifier of provider `Partner`",
        );
        assert_error(
            &with(
                &partner.replace(
                    "idp_identifiers",
                    "attribute_mapping = { \"custom:x\" = \"x\" }\nidp_identifiers",
                ),
                "[\"COGNITO\"]",
            ),
            "user_pools[0].identity_providers[0].attribute_mapping.custom:x",
            "custom attribute",
        );
    }

    #[test]
    fn base_config_is_valid() {
        assert_eq!(errors(BASE), Vec::<String>::new());
    }

    #[test]
    fn smtp_password_never_crosses_a_network_in_clear() {
        let smtp = |host: &str, security: &str| {
            BASE.replace(
                "resource_servers = [",
                &format!(
                    r#"messages = {{ smtp = {{ host = "{host}", security = "{security}", from = "a@b.c", username = "u", password = "p" }} }}
resource_servers = ["#
                ),
            )
        };
        assert_error(
            &smtp("smtp.example.com", "none"),
            "user_pools[0].messages.smtp.security",
            "in clear text",
        );
        for (host, security) in [
            ("127.0.0.1", "none"),
            ("localhost", "none"),
            ("::1", "none"),
            ("smtp.example.com", "starttls"),
        ] {
            assert_eq!(
                errors(&smtp(host, security)),
                Vec::<String>::new(),
                "{host}"
            );
        }
    }

    #[test]
    fn pool_domain_refuses_plain_http_off_loopback_unless_opted_in() {
        let domain = |d: &str| {
            BASE.replace(
                r#"domain = { listen = "127.0.0.1:9000", base_url = "http://localhost:9000" }"#,
                &format!("domain = {{ {d} }}"),
            )
        };
        let insecure = domain(r#"listen = "127.0.0.1:9000", base_url = "http://example.com""#);
        assert_error(
            &insecure,
            "user_pools[0].domain.base_url",
            "allow_insecure_http = true",
        );
        assert_error(
            &domain(r#"listen = "0.0.0.0:9000", base_url = "https://auth.example.com""#),
            "user_pools[0].domain.listen",
            "plain HTTP on a non-loopback address",
        );
        assert_error(
            &domain(
                r#"listen = "127.0.0.1:9000", base_url = "http://localhost:9000", certificates = [{ self_signed = ["localhost"] }]"#,
            ),
            "user_pools[0].domain.certificates",
            "must be https",
        );
        assert_error(
            &domain(
                r#"listen = "127.0.0.1:9000", base_url = "https://localhost:9000", certificates = [{ cert_file = "a.pem" }]"#,
            ),
            "user_pools[0].domain.certificates[0]",
            "cert_file and key_file",
        );
        for ok in [
            r#"listen = "127.0.0.1:9000", base_url = "http://127.0.0.5:9000""#,
            r#"listen = "[::1]:9000", base_url = "http://[::1]:9000""#,
            r#"listen = "127.0.0.1:9000", base_url = "https://auth.example.com""#,
            r#"listen = "0.0.0.0:9443", base_url = "https://auth.example.com", certificates = [{ self_signed = ["auth.example.com"] }]"#,
            r#"listen = "0.0.0.0:9000", base_url = "http://example.com", allow_insecure_http = true"#,
        ] {
            assert_eq!(errors(&domain(ok)), Vec::<String>::new(), "{ok}");
        }
    }

    #[test]
    fn authenticate_on_http_listener_is_refused() {
        let t = BASE
            .replace("protocol = \"HTTPS\"", "protocol = \"HTTP\"")
            .replace("certificates = [{ self_signed = [\"localhost\"] }]", "");
        assert_error(
            &t,
            "listeners[0].rules[0].actions[0]",
            "only on HTTPS listeners",
        );
    }

    #[test]
    fn jwt_validation_rules() {
        let jwt = |extra: &str| {
            BASE.replace(
                r#"{ type = "authenticate-cognito", user_pool = "demo", user_pool_client_id = "tasks-web", scope = "openid tasks/read" },"#,
                &format!(r#"{{ type = "jwt-validation", jwks_endpoint = "https://idp.example/jwks.json", issuer = "https://idp.example"{extra} }},"#),
            )
        };
        assert_eq!(errors(&jwt("")), Vec::<String>::new());
        assert_error(
            &jwt(
                r#", additional_claims = [{ format = "single-string", name = "exp", values = ["1"] }]"#,
            ),
            "listeners[0].rules[0].actions[0].additional_claims[0].name",
            "always checked",
        );
        assert_error(
            &jwt(r#", additional_claims = [{ format = "regex", name = "aud", values = ["a"] }]"#),
            "listeners[0].rules[0].actions[0].additional_claims[0].format",
            "single-string",
        );
        assert_error(
            &jwt(
                r#", additional_claims = [{ format = "space-separated-values", name = "scope", values = ["a b"] }]"#,
            ),
            "listeners[0].rules[0].actions[0].additional_claims[0].values[0]",
            "no spaces",
        );
        assert_error(
            &jwt("").replace(
                "https://idp.example/jwks.json",
                "http://idp.example/jwks.json",
            ),
            "listeners[0].rules[0].actions[0].jwks_endpoint",
            "https",
        );
        let eleven = (0..11)
            .map(|i| format!(r#"{{ format = "single-string", name = "c{i}", values = ["v"] }}"#))
            .collect::<Vec<_>>()
            .join(", ");
        assert_error(
            &jwt(&format!(", additional_claims = [{eleven}]")),
            "listeners[0].rules[0].actions[0].additional_claims",
            "at most 10",
        );
        let http = jwt("")
            .replace("protocol = \"HTTPS\"", "protocol = \"HTTP\"")
            .replace("certificates = [{ self_signed = [\"localhost\"] }]", "");
        assert_error(
            &http,
            "listeners[0].rules[0].actions[0]",
            "only on HTTPS listeners",
        );
    }

    #[test]
    fn desync_mode_is_defensive() {
        let with = |mode: &str| {
            BASE.replacen(
                "name = \"demo\"\n",
                &format!("name = \"demo\"\ndesync_mitigation_mode = \"{mode}\"\n"),
                1,
            )
        };
        assert!(errors(&with("defensive")).is_empty());
        assert_error(
            &with("strictest"),
            "load_balancer.desync_mitigation_mode",
            "only \"defensive\"",
        );
        assert_error(
            &with("paranoid"),
            "load_balancer.desync_mitigation_mode",
            "must be monitor, defensive or strictest",
        );
    }

    #[test]
    fn target_group_kinds_and_attributes_are_checked() {
        let tg = |extra: &str| {
            BASE.replace(
                "targets = [{ id = \"127.0.0.1\", port = 3000 }]",
                &format!("targets = [{{ id = \"127.0.0.1\", port = 3000 }}]\n{extra}"),
            )
        };
        assert_error(
            &tg("target_type = \"lambda\""),
            "target_groups[0].lambda",
            "needs",
        );
        assert_error(
            &tg("target_type = \"lambda\"\nlambda = { endpoint = \"ftp://x\" }"),
            "target_groups[0].lambda.endpoint",
            "http:// or https://",
        );
        assert_error(
            &tg("target_type = \"lambda\"\nlambda = { endpoint = \"http://127.0.0.1:9000\" }"),
            "target_groups[0].targets",
            "not targets",
        );
        assert_error(
            &tg("lambda = { endpoint = \"http://127.0.0.1:9000\" }"),
            "target_groups[0].lambda",
            "only for target_type",
        );
        assert_error(
            &tg("stickiness = { enabled = true, type = \"app_cookie\" }"),
            "target_groups[0].stickiness.cookie_name",
            "needs the application's cookie name",
        );
        assert_error(
            &tg(
                "stickiness = { enabled = true, type = \"app_cookie\", cookie_name = \"AWSALBAPP-0\" }",
            ),
            "target_groups[0].stickiness.cookie_name",
            "must not start with AWSALB",
        );
        assert_error(
            &tg("slow_start_seconds = 10"),
            "target_groups[0].slow_start_seconds",
            "30-900",
        );
        assert_error(
            &tg(
                "slow_start_seconds = 30\nload_balancing_algorithm = \"least_outstanding_requests\"",
            ),
            "target_groups[0].slow_start_seconds",
            "least_outstanding_requests",
        );
        assert_error(
            &tg("anomaly_mitigation = true"),
            "target_groups[0].anomaly_mitigation",
            "weighted_random",
        );
        assert_error(
            &tg("minimum_healthy_targets_percentage = 0"),
            "target_groups[0].minimum_healthy_targets_percentage",
            "1-100",
        );
        assert_error(
            &tg("minimum_healthy_targets_count = 0"),
            "target_groups[0].minimum_healthy_targets_count",
            "at least 1",
        );
        assert_error(
            &tg("deregistration_delay_seconds = 3601"),
            "target_groups[0].deregistration_delay_seconds",
            "0-3600",
        );
        assert_error(
            &tg("health_check = { grpc_code = \"100\" }"),
            "target_groups[0].health_check.grpc_code",
            "0-99",
        );
        // gRPC and HTTP/2 groups: HTTPS listeners, and no browser login in front.
        assert_error(
            &tg("protocol_version = \"GRPC\""),
            "listeners[0].rules[0].actions[1]",
            "browser login",
        );
        let http = tg("protocol_version = \"HTTP2\"")
            .replace("protocol = \"HTTPS\"", "protocol = \"HTTP\"")
            .replace("certificates = [{ self_signed = [\"localhost\"] }]\n", "");
        assert!(
            errors(&http)
                .iter()
                .any(|e| e.contains("needs an HTTPS listener")),
            "{:?}",
            errors(&http)
        );
        assert!(
            errors(&tg(
                "protocol = \"HTTPS\"\nderegistration_delay_seconds = 0"
            ))
            .is_empty()
        );
    }

    #[test]
    fn unknown_target_group_is_refused() {
        let t = BASE.replace("target_group = \"tasks\"", "target_group = \"taks\"");
        assert_error(
            &t,
            "listeners[0].rules[0].actions[1].target_group",
            "unknown target group `taks`",
        );
    }

    #[test]
    fn duplicate_priority_is_refused() {
        let t = format!(
            "{BASE}\n[[listeners.rules]]\npriority = 10\nconditions = [{{ field = \"path-pattern\", values = [\"/x\"] }}]\nactions = [{{ type = \"fixed-response\", status_code = 200 }}]\n"
        );
        let es = errors(&t);
        assert!(
            es.iter()
                .any(|e| e.contains("priority 10 is used by another rule")),
            "{es:#?}"
        );
    }

    #[test]
    fn missing_terminal_and_action_after_terminal_are_refused() {
        let t = BASE.replace("  { type = \"forward\", target_group = \"tasks\" },\n", "");
        assert_error(&t, "listeners[0].rules[0].actions", "no terminal action");
        let t = BASE.replace(
            "actions = [\n  { type = \"authenticate-cognito\"",
            "actions = [\n  { type = \"forward\", target_group = \"tasks\" },\n  { type = \"authenticate-cognito\"",
        );
        assert!(
            errors(&t)
                .iter()
                .any(|e| e.contains("more than one terminal") || e.contains("must be last"))
        );
        let t = BASE.replace(
            "scope = \"openid tasks/read\" },\n  { type = \"forward\", target_group = \"tasks\" },",
            "scope = \"openid tasks/read\", order = 2 },\n  { type = \"forward\", target_group = \"tasks\", order = 1 },",
        );
        assert_error(
            &t,
            "listeners[0].rules[0].actions[0]",
            "runs after the terminal action",
        );
    }

    #[test]
    fn callback_url_must_be_https_or_loopback() {
        let t = BASE.replace(
            "https://localhost:8443/oauth2/idpresponse",
            "http://example.com/cb",
        );
        assert_error(
            &t,
            "user_pools[0].clients[0].callback_urls[0]",
            "must be https",
        );
        let t = BASE.replace(
            "https://localhost:8443/oauth2/idpresponse",
            "http://127.0.0.1:8443/cb",
        );
        assert_eq!(errors(&t), Vec::<String>::new());
        let t = BASE.replace(
            "https://localhost:8443/oauth2/idpresponse",
            "https://x/cb#frag",
        );
        assert_error(&t, "user_pools[0].clients[0].callback_urls[0]", "fragment");
    }

    #[test]
    fn cognito_client_needs_secret_and_scope() {
        let t = BASE.replace("generate_secret = true, ", "");
        assert_error(
            &t,
            "listeners[0].rules[0].actions[0].user_pool_client_id",
            "has no secret",
        );
        let t = BASE.replace(
            "scope = \"openid tasks/read\"",
            "scope = \"openid tasks/write\"",
        );
        assert_error(
            &t,
            "listeners[0].rules[0].actions[0].scope",
            "not allowed scope `tasks/write`",
        );
        let t = BASE.replace("scope = \"openid tasks/read\"", "scope = \"tasks/read\"");
        assert_error(
            &t,
            "listeners[0].rules[0].actions[0].scope",
            "must include `openid`",
        );
    }

    #[test]
    fn undefined_custom_scope_is_refused() {
        let t = BASE.replace(
            "allowed_oauth_scopes = [\"openid\", \"tasks/read\"]",
            "allowed_oauth_scopes = [\"openid\", \"tasks/read\", \"notes/read\"]",
        );
        assert_error(
            &t,
            "user_pools[0].clients[0].allowed_oauth_scopes[2]",
            "notes/read",
        );
    }

    #[test]
    fn priorities_and_limits() {
        let t = BASE.replace("priority = 10", "priority = 50001");
        assert_error(&t, "listeners[0].rules[0].priority", "1-50000");
        let t = BASE.replace(
            "values = [\"/tasks\", \"/tasks/*\"]",
            "values = [\"/a*\", \"/b*\", \"/c*\", \"/d*\", \"/e*\", \"/f*\"]",
        );
        assert!(
            errors(&t)
                .iter()
                .any(|e| e.contains("condition values; ALB allows 5"))
        );
        let t = BASE.replace("field = \"path-pattern\"", "field = \"path-patern\"");
        assert_error(
            &t,
            "listeners[0].rules[0].conditions[0].field",
            "unknown condition `path-patern`",
        );
    }

    /// BASE with its rule's condition replaced by `cond`.
    fn with_condition(cond: &str) -> String {
        BASE.replace(
            r#"{ field = "path-pattern", values = ["/tasks", "/tasks/*"] }"#,
            cond,
        )
    }

    fn first_condition(text: &str) -> crate::Condition {
        let cfg = load_str(text, Path::new("lb.toml"), Path::new(".")).unwrap();
        cfg.config.listeners[0].rules[0].conditions[0].clone()
    }

    #[test]
    fn query_string_takes_elbv2_values_or_query() {
        let elb = with_condition(
            r#"{ field = "query-string", values = [{ key = "version", value = "v2*" }, { value = "*beta*" }] }"#,
        );
        let ours = with_condition(
            r#"{ field = "query-string", query = [{ key = "version", value = "v2*" }, { value = "*beta*" }] }"#,
        );
        for t in [&elb, &ours] {
            assert_eq!(errors(t), Vec::<String>::new());
            let pairs: Vec<_> = first_condition(t)
                .query_pairs()
                .iter()
                .map(|p| (p.key.clone(), p.value.clone()))
                .collect();
            assert_eq!(
                pairs,
                [
                    (Some("version".to_string()), "v2*".to_string()),
                    (None, "*beta*".to_string())
                ]
            );
        }
        let both = with_condition(
            r#"{ field = "query-string", values = [{ key = "a", value = "1" }], query = [{ key = "b", value = "2" }] }"#,
        );
        assert_error(
            &both,
            "listeners[0].rules[0].conditions[0].values",
            "not both",
        );
        let strings = with_condition(r#"{ field = "query-string", values = ["a=1"] }"#);
        assert_error(
            &strings,
            "listeners[0].rules[0].conditions[0].values",
            "not strings",
        );
        let empty = with_condition(r#"{ field = "query-string" }"#);
        assert_error(
            &empty,
            "listeners[0].rules[0].conditions[0].values",
            "at least one",
        );
        let long = with_condition(&format!(
            r#"{{ field = "query-string", values = [{{ value = "{}" }}] }}"#,
            "x".repeat(129)
        ));
        assert_error(
            &long,
            "listeners[0].rules[0].conditions[0].values[0].value",
            "1-128",
        );
        let pairs_elsewhere =
            with_condition(r#"{ field = "path-pattern", values = [{ key = "a", value = "1" }] }"#);
        assert_error(
            &pairs_elsewhere,
            "listeners[0].rules[0].conditions[0].values",
            "only for query-string",
        );
    }

    proptest::proptest! {
        /// Whatever mix of strings and pairs `values` holds, each lands in its list, in order.
        #[test]
        fn condition_values_split_strings_from_pairs(
            items in proptest::collection::vec(
                (proptest::bool::ANY, proptest::option::of("[a-z*?]{1,8}"), "[a-z0-9*?]{1,8}"),
                0..8,
            )
        ) {
            let rendered: Vec<String> = items
                .iter()
                .map(|(pair, key, value)| match (pair, key) {
                    (false, _) => format!("{value:?}"),
                    (true, Some(k)) => format!("{{ key = {k:?}, value = {value:?} }}"),
                    (true, None) => format!("{{ value = {value:?} }}"),
                })
                .collect();
            let text = format!("field = \"query-string\"\nvalues = [{}]\n", rendered.join(", "));
            let c: crate::Condition = toml::from_str(&text).unwrap();
            let strings: Vec<String> = items.iter().filter(|i| !i.0).map(|i| i.2.clone()).collect();
            let pairs: Vec<(Option<String>, String)> = items
                .iter()
                .filter(|i| i.0)
                .map(|i| (i.1.clone(), i.2.clone()))
                .collect();
            proptest::prop_assert_eq!(&c.values, &strings);
            let got: Vec<_> = c.query_pairs().iter().map(|p| (p.key.clone(), p.value.clone())).collect();
            proptest::prop_assert_eq!(got, pairs);
        }
    }

    #[test]
    fn rate_limits_are_bounded() {
        let t = format!(
            "{BASE}\n[user_pools.rate_limits]\nper_user = {{ burst = 0, per_minute = 10 }}\nhash_workers = 0\nhash_queue = 20000\n"
        );
        assert_error(&t, "user_pools[0].rate_limits.per_user.burst", "1-10000");
        assert_error(&t, "user_pools[0].rate_limits.hash_workers", "1-64");
        assert_error(&t, "user_pools[0].rate_limits.hash_queue", "0-10000");
        let ok = format!(
            "{BASE}\n[user_pools.rate_limits]\nper_ip = {{ burst = 5, per_minute = 60 }}\ntrusted_proxies = [\"10.0.0.0/8\"]\n"
        );
        assert_eq!(errors(&ok), Vec::<String>::new());
    }

    #[test]
    fn users_name_existing_groups() {
        let t = format!(
            "{BASE}\n[[user_pools.users]]\nusername = \"u\"\npassword = \"p\"\ngroups = [\"ghosts\"]\n"
        );
        assert_error(
            &t,
            "user_pools[0].users[0].groups[0]",
            "unknown group `ghosts`",
        );
        let t = format!(
            "{BASE}\n[[user_pools.groups]]\nname = \"g\"\n[[user_pools.groups]]\nname = \"g\"\n"
        );
        assert_error(&t, "user_pools[0].groups[1].name", "defined twice");
    }

    #[test]
    fn token_validities_have_cognitos_bounds() {
        let t = BASE.replace("generate_secret = true,", "generate_secret = true, access_token_validity = 2, token_validity_units = { access_token = \"days\" },");
        assert_error(
            &t,
            "user_pools[0].clients[0].access_token_validity",
            "5 minutes to 1 day",
        );
        let t = BASE.replace("generate_secret = true,", "generate_secret = true, refresh_token_validity = 30, token_validity_units = { refresh_token = \"minutes\" },");
        assert_error(
            &t,
            "user_pools[0].clients[0].refresh_token_validity",
            "1 hour to 10 years",
        );
        let t = BASE.replace("generate_secret = true,", "generate_secret = true, access_token_validity = 5, token_validity_units = { access_token = \"minutes\" }, refresh_token_validity = 0,");
        assert_eq!(errors(&t), Vec::<String>::new());
    }

    #[test]
    fn backchannel_logout_uri_is_https_or_loopback_without_fragment() {
        for bad in [
            "http://shop.example/bcl",
            "https://shop.example/bcl#x",
            "myapp://bcl",
            "not a url",
        ] {
            let t = BASE.replace(
                "generate_secret = true,",
                &format!("generate_secret = true, backchannel_logout_uri = \"{bad}\","),
            );
            assert_error(
                &t,
                "user_pools[0].clients[0].backchannel_logout_uri",
                "must be an https URL",
            );
        }
        for good in ["https://shop.example/bcl", "http://127.0.0.1:9/bcl"] {
            let t = BASE.replace(
                "generate_secret = true,",
                &format!("generate_secret = true, backchannel_logout_uri = \"{good}\", backchannel_logout_session_required = true,"),
            );
            assert_eq!(errors(&t), Vec::<String>::new());
        }
    }

    #[test]
    fn cognito_logout_needs_a_registered_logout_uri() {
        let t = BASE.replace(
            "scope = \"openid tasks/read\"",
            "scope = \"openid tasks/read\", logout_path = \"/logout\"",
        );
        assert_error(
            &t,
            "listeners[0].rules[0].actions[0].logout_redirect_uri",
            "set logout_redirect_uri",
        );
        let t = BASE.replace("scope = \"openid tasks/read\"", "scope = \"openid tasks/read\", logout_path = \"/logout\", logout_redirect_uri = \"https://localhost:8443/bye\"");
        assert_error(
            &t,
            "listeners[0].rules[0].actions[0].logout_redirect_uri",
            "not one of client `tasks-web`'s logout_urls",
        );
        let t = t.replace(
            "callback_urls = [",
            "logout_urls = [\"https://localhost:8443/bye\"], callback_urls = [",
        );
        assert_eq!(errors(&t), Vec::<String>::new());
        let t = BASE.replace(
            "scope = \"openid tasks/read\"",
            "scope = \"openid tasks/read\", logout_path = \"logout\"",
        );
        assert!(
            errors(&t)
                .iter()
                .any(|e| e.contains("logout_path: must be a path"))
        );
    }

    #[test]
    fn client_credentials_rules() {
        let t = BASE.replace(
            "allowed_oauth_flows = [\"code\"]",
            "allowed_oauth_flows = [\"code\", \"client_credentials\"]",
        );
        assert_error(
            &t,
            "user_pools[0].clients[0].allowed_oauth_flows",
            "only flow",
        );
        assert_error(
            &t,
            "user_pools[0].clients[0].allowed_oauth_scopes[0]",
            "only custom scopes",
        );
    }

    #[test]
    fn redirect_rules() {
        let t = BASE.replace(
            "default_actions = [{ type = \"fixed-response\", status_code = 404 }]",
            "default_actions = [{ type = \"redirect\", status_code = \"HTTP_301\", protocol = \"HTTP\" }]",
        );
        assert_error(
            &t,
            "listeners[0].default_actions[0].protocol",
            "HTTPS to HTTP",
        );
        let t = BASE.replace(
            "default_actions = [{ type = \"fixed-response\", status_code = 404 }]",
            "default_actions = [{ type = \"redirect\", status_code = \"HTTP_301\", host = \"#{host}\" }]",
        );
        assert_error(&t, "listeners[0].default_actions[0]", "would loop");
    }

    #[test]
    fn session_timeout_bounds() {
        let t = BASE.replace(
            "scope = \"openid tasks/read\"",
            "scope = \"openid tasks/read\", session_timeout = 604801",
        );
        assert_error(
            &t,
            "listeners[0].rules[0].actions[0].session_timeout",
            "604800",
        );
    }

    #[test]
    fn url_parsing() {
        assert_eq!(
            parse_url("https://a.example:8443/x?y"),
            Some(("https".into(), "a.example".into(), "/x?y".into()))
        );
        assert_eq!(
            parse_url("http://localhost:9000").map(|u| u.2),
            Some(String::new())
        );
        assert!(parse_url("/relative").is_none());
        assert!(
            is_loopback_host("127.0.0.2")
                && is_loopback_host("[::1]")
                && !is_loopback_host("10.0.0.1")
        );
    }
}
