//! Checks of listeners, their certificates, rules and conditions.

use super::*;

/// Certificate sources, for listeners and user pool domains alike.
pub(super) fn check_certificates(c: &mut Checker, at: &str, certs: &[Certificate]) {
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

pub(super) fn check_listener(
    c: &mut Checker,
    at: &str,
    l: &Listener,
    config: &Config,
    tgs: &HashSet<String>,
) {
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

pub(super) fn check_conditions(c: &mut Checker, at: &str, conditions: &[Condition]) {
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
