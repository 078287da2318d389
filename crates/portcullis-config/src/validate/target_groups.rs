//! Checks of target groups: targets, Lambda functions, stickiness and health checks.

use super::*;

/// Whether a matcher list (`200`, `200,202`, `200-299`) holds only codes in `range`.
pub(super) fn codes_ok(list: &str, range: std::ops::RangeInclusive<u16>) -> bool {
    list.split(',').all(|part| {
        let in_range = |s: &str| s.trim().parse::<u16>().is_ok_and(|c| range.contains(&c));
        match part.split_once('-') {
            Some((a, b)) => in_range(a) && in_range(b),
            None => in_range(part),
        }
    })
}

/// Protocol, target type, Lambda function and the attributes that depend on them.
pub(super) fn check_target_kind(c: &mut Checker, at: &str, tg: &TargetGroup) {
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

pub(super) fn check_target_groups(c: &mut Checker, tgs: &[TargetGroup]) -> HashSet<String> {
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
