//! Load-time checks: every ALB or Cognito rule a config can break, reported with file, field and reason.

use crate::model::*;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

mod actions;
mod listeners;
mod target_groups;
mod user_pools;

pub use actions::*;
pub use listeners::*;
use target_groups::*;
pub use user_pools::*;

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
