//! Checks of rule actions: forward, redirect, fixed-response and authenticate-*.

use super::*;

/// ALB's fixed-response content types.
pub const FIXED_RESPONSE_CONTENT_TYPES: [&str; 5] = [
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
];

/// Puts actions in run order: by `order` when every action has one, else as listed.
pub fn ordered_actions(actions: &[Action]) -> Vec<&Action> {
    let mut v: Vec<&Action> = actions.iter().collect();
    if v.iter().all(|a| a.order().is_some()) {
        v.sort_by_key(|a| a.order());
    }
    v
}

/// A rule's actions: their order, then each action by its type.
pub(super) fn check_actions(
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
    check_action_order(c, at, actions);
    let ordered = ordered_actions(actions);
    let index_of = |a: &Action| actions.iter().position(|x| std::ptr::eq(x, a)).unwrap_or(0);
    for a in &ordered {
        let aat = format!("{at}[{}]", index_of(a));
        match a {
            Action::Forward(f) => check_forward(c, &aat, f, actions, l, config, tgs),
            Action::FixedResponse(f) => check_fixed_response(c, &aat, f),
            Action::Redirect(r) => check_redirect(c, &aat, r, l.protocol),
            Action::AuthenticateCognito(a) => {
                check_authenticate_listener(c, &aat, l);
                check_session(c, &aat, &a.session());
                check_cognito(c, &aat, a, config);
            }
            Action::JwtValidation(j) => check_jwt_validation(c, &aat, j, l),
            Action::AuthenticateOidc(a) => {
                check_authenticate_listener(c, &aat, l);
                check_session(c, &aat, &a.session());
                check_oidc(c, &aat, a);
            }
        }
    }
}

/// The actions' `order` values and that exactly one terminal action runs, last.
fn check_action_order(c: &mut Checker, at: &str, actions: &[Action]) {
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
}

/// A forward action: its target groups exist, their weights, and what HTTP/2 groups need.
fn check_forward(
    c: &mut Checker,
    aat: &str,
    f: &ForwardAction,
    actions: &[Action],
    l: &Listener,
    config: &Config,
    tgs: &HashSet<String>,
) {
    if f.target_group.is_some() != f.target_groups.is_empty() {
        c.fail(aat, "give target_group, or target_groups with weights");
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
                    aat,
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
                    aat,
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

/// A fixed-response action: status code, content type and body size.
fn check_fixed_response(c: &mut Checker, aat: &str, f: &FixedResponseAction) {
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

/// Authenticate actions run only on HTTPS listeners.
fn check_authenticate_listener(c: &mut Checker, aat: &str, l: &Listener) {
    if l.protocol != Protocol::HTTPS {
        c.fail(
            aat,
            "authenticate actions are allowed only on HTTPS listeners",
        );
    }
}

/// A jwt-validation action: HTTPS listener, JWKS endpoint, issuer and additional claims.
fn check_jwt_validation(c: &mut Checker, aat: &str, j: &JwtValidation, l: &Listener) {
    if l.protocol != Protocol::HTTPS {
        c.fail(aat, "jwt-validation is allowed only on HTTPS listeners");
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
        if ["exp", "iss", "nbf", "iat"].contains(&cl.name.as_str()) || cl.name.is_empty() {
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

/// An authenticate-oidc action's own fields: endpoints, client id and secret.
fn check_oidc(c: &mut Checker, aat: &str, a: &AuthenticateOidc) {
    let endpoints = [
        &a.authorization_endpoint,
        &a.token_endpoint,
        &a.user_info_endpoint,
    ];
    let given = endpoints.iter().filter(|e| e.is_some()).count();
    if given != 0 && given != 3 {
        c.fail(
                aat,
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
            aat,
            "give exactly one of client_secret and client_secret_env",
        ),
    }
}

pub(super) fn check_redirect(c: &mut Checker, at: &str, r: &RedirectAction, listener: Protocol) {
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

pub(super) fn check_session(c: &mut Checker, at: &str, s: &SessionSettings) {
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

pub(super) fn check_cognito(c: &mut Checker, at: &str, a: &AuthenticateCognito, config: &Config) {
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
