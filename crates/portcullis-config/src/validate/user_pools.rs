//! Checks of user pools: domains, identity providers, clients and URLs.

use super::*;

/// A pool's domain: where it listens and whether secrets could cross a network in clear text.
pub(super) fn check_domain(c: &mut Checker, at: &str, d: &Domain) {
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

pub(super) fn check_user_pools(c: &mut Checker, pools: &[UserPool]) {
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
        let custom = check_resource_servers(c, &at, p);
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
        let group_names = check_groups(c, &at, p);
        check_access_keys(c, &at, p);
        check_rate_limits(c, &at, &p.rate_limits);
        check_password_policy(c, &at, &p.password_policy);
        check_messages(c, &at, p);
        if !["OFF", "OPTIONAL", "ON"].contains(&p.mfa_configuration.as_str()) {
            c.fail(
                format!("{at}.mfa_configuration"),
                "must be OFF, OPTIONAL or ON",
            );
        }
        check_custom_attributes(c, &at, p);
        check_users(c, &at, p, &group_names);
    }
}

/// A pool's resource servers and their scopes; returns the custom scopes (`identifier/name`).
fn check_resource_servers(c: &mut Checker, at: &str, p: &UserPool) -> BTreeSet<String> {
    let mut custom = BTreeSet::new();
    let mut ids = HashSet::new();
    for (j, rs) in p.resource_servers.iter().enumerate() {
        let rat = format!("{at}.resource_servers[{j}]");
        if rs.identifier.is_empty() || rs.identifier.len() > 256 || rs.identifier.contains(' ') {
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
    custom
}

/// A pool's groups; returns their names.
fn check_groups(c: &mut Checker, at: &str, p: &UserPool) -> HashSet<String> {
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
    group_names
}

/// A pool's access keys for the admin API.
fn check_access_keys(c: &mut Checker, at: &str, p: &UserPool) {
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
}

/// A pool's rate limits and password-hashing capacity.
fn check_rate_limits(c: &mut Checker, at: &str, rl: &RateLimits) {
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
}

/// A pool's password policy.
fn check_password_policy(c: &mut Checker, at: &str, pp: &PasswordPolicy) {
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
}

/// A pool's outgoing mail: SMTP settings, and never secrets in clear text to another machine.
fn check_messages(c: &mut Checker, at: &str, p: &UserPool) {
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
}

/// A pool's custom attributes.
fn check_custom_attributes(c: &mut Checker, at: &str, p: &UserPool) {
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
        if !["String", "Number", "Boolean", "DateTime"].contains(&a.attribute_data_type.as_str()) {
            c.fail(
                format!("{at}.custom_attributes[{j}].attribute_data_type"),
                "must be String, Number, Boolean or DateTime",
            );
        }
    }
}

/// A pool's seed users: names, passwords, groups and attributes.
fn check_users(c: &mut Checker, at: &str, p: &UserPool, group_names: &HashSet<String>) {
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

/// A pool's external providers, and the clients' `supported_identity_providers` naming them.
pub(super) fn check_identity_providers(c: &mut Checker, at: &str, p: &UserPool) {
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

pub(super) fn check_client(
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

pub(super) fn is_https_or_loopback(u: &str) -> bool {
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

pub(super) fn is_pool_id(id: &str) -> bool {
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
