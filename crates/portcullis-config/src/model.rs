//! The config model: one TOML file whose names follow the ELBv2 and Cognito APIs in snake_case.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the user pools keep their state: `"sqlite"` (default, `<state_dir>/idp.sqlite3`) or a
    /// `postgres://` URL shared by several nodes.
    #[serde(default)]
    pub store: Option<String>,
    /// Load-balancer-wide settings.
    pub load_balancer: LoadBalancer,
    /// Listeners, each with its rules.
    #[serde(default)]
    pub listeners: Vec<Listener>,
    /// Target groups that `forward` actions name.
    #[serde(default)]
    pub target_groups: Vec<TargetGroup>,
    /// Embedded Cognito-shaped user pools.
    #[serde(default)]
    pub user_pools: Vec<UserPool>,
}

/// Settings that apply to the whole load balancer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancer {
    /// The name in `app/<name>/<id>` and in the signer ARN.
    pub name: String,
    /// Where generated keys, certificates and the embedded database live (relative to the config file).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Region used in ARNs and issuers (`arn:aws:elasticloadbalancing:<region>:...`).
    #[serde(default = "default_region")]
    pub region: String,
    /// Account id used in ARNs.
    #[serde(default = "default_account_id")]
    pub account_id: String,
    /// The 16-hex-digit id in `app/<name>/<id>`; generated once into the state dir when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// The admin listener: public keys for `x-amzn-oidc-data`, health.
    #[serde(default)]
    pub admin: Option<Admin>,
    /// Where the ALB-format access log goes: `"stdout"`, a file path, or absent for none.
    #[serde(default)]
    pub access_log: Option<String>,
    /// `idle_timeout.timeout_seconds`: how long a target, or a client connection between
    /// requests, may stay silent (1–4000).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_seconds: u64,
    /// `client_keep_alive.seconds`: the longest a client connection is kept, busy or not; then it
    /// is closed after the request in progress (ALB: 60–604800, default 3600; here from 1).
    #[serde(default = "default_client_keep_alive")]
    pub client_keep_alive_seconds: u64,
    /// Pass the balancer's own cookies (`<session cookie>-N`, `AWSALBAuthNonce`) on to targets, as
    /// ALB does. Off by default: a target never holds a replayable session.
    #[serde(default)]
    pub forward_auth_cookies: bool,
    /// `routing.http.xff_header_processing.mode`: `append` (default), `preserve` or `remove`.
    #[serde(default = "append")]
    pub xff_header_processing_mode: String,
    /// `routing.http.xff_client_port.enabled`: append `ip:port` (`[ip]:port` for IPv6).
    #[serde(default)]
    pub xff_client_port: bool,
    /// `routing.http.preserve_host_header.enabled`: pass `Host` exactly as received.
    #[serde(default)]
    pub preserve_host_header: bool,
    /// `routing.http.drop_invalid_header_fields.enabled`: drop headers whose names are not
    /// `[-A-Za-z0-9]+`.
    #[serde(default)]
    pub drop_invalid_header_fields: bool,
    /// `routing.http.desync_mitigation_mode`: only `defensive` (ALB's default) is offered.
    #[serde(default = "defensive")]
    pub desync_mitigation_mode: String,
    /// `routing.http2.enabled` (default true): offer HTTP/2 (ALPN `h2`) on HTTPS listeners.
    #[serde(default = "yes")]
    pub http2_enabled: bool,
    /// `routing.http.x_amzn_tls_version_and_cipher_suite.enabled`: send targets
    /// `x-amzn-tls-version` and `x-amzn-tls-cipher-suite` for HTTPS requests.
    #[serde(default)]
    pub tls_version_and_cipher_suite_headers: bool,
}

fn defensive() -> String {
    "defensive".into()
}
fn append() -> String {
    "append".into()
}

/// The admin listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// `host:port` to bind.
    pub listen: String,
    /// Base URL backends use to reach it (defaults to `http://<listen>`).
    #[serde(default)]
    pub base_url: Option<String>,
}

/// `HTTP` or `HTTPS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Protocol {
    /// Plain HTTP/1.1 (and h2c is not offered).
    HTTP,
    /// TLS with ALPN h2 and http/1.1.
    HTTPS,
}

/// A listener: one port, its certificates, its rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// HTTP or HTTPS.
    pub protocol: Protocol,
    /// Port to bind (0 picks a free one, for tests).
    pub port: u16,
    /// Address to bind.
    #[serde(default = "default_bind")]
    pub address: String,
    /// Certificates for HTTPS (the first is the default when SNI matches none).
    #[serde(default)]
    pub certificates: Vec<Certificate>,
    /// The default rule's actions.
    pub default_actions: Vec<Action>,
    /// Rules other than the default, by priority.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// A certificate source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// Generate a self-signed certificate for these names once into the state dir.
    #[serde(default)]
    pub self_signed: Option<Vec<String>>,
    /// PEM certificate chain.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// A listener rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// 1–50000, unique per listener; lowest is evaluated first.
    pub priority: u32,
    /// All must match.
    pub conditions: Vec<Condition>,
    /// Authentication (optional) then exactly one terminal action.
    pub actions: Vec<Action>,
}

/// A rule condition, as ELBv2's `RuleCondition`.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "RawCondition")]
pub struct Condition {
    /// `host-header`, `path-pattern`, `http-header`, `http-request-method`, `query-string` or
    /// `source-ip`.
    pub field: String,
    /// Any one matching suffices (patterns, methods or CIDRs; not for `query-string`).
    pub values: Vec<String>,
    /// The header an `http-header` condition looks at.
    pub http_header_name: Option<String>,
    /// `query-string` pairs: `{ key = "version", value = "v1*" }`, or `{ value = "*beta*" }` for any key.
    pub query: Vec<QueryMatch>,
    /// `query-string` pairs given as ELBv2's `QueryStringConfig.Values`: `values = [{ key, value }]`.
    pub value_pairs: Vec<QueryMatch>,
}

impl Condition {
    /// The `query-string` pairs, from `query` or from `values` (validation refuses both at once).
    pub fn query_pairs(&self) -> &[QueryMatch] {
        if self.query.is_empty() {
            &self.value_pairs
        } else {
            &self.query
        }
    }
}

/// A condition as written: `values` holds strings, or `{ key, value }` tables (ELBv2's
/// `QueryStringConfig.Values`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    field: String,
    #[serde(default)]
    values: Vec<ConditionValue>,
    #[serde(default)]
    http_header_name: Option<String>,
    #[serde(default)]
    query: Vec<QueryMatch>,
}

/// One entry of a condition's `values`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ConditionValue {
    Text(String),
    Pair(QueryMatch),
}

impl From<RawCondition> for Condition {
    fn from(raw: RawCondition) -> Condition {
        let (mut values, mut value_pairs) = (Vec::new(), Vec::new());
        for v in raw.values {
            match v {
                ConditionValue::Text(t) => values.push(t),
                ConditionValue::Pair(p) => value_pairs.push(p),
            }
        }
        Condition {
            field: raw.field,
            values,
            http_header_name: raw.http_header_name,
            query: raw.query,
            value_pairs,
        }
    }
}

/// One `query-string` pair of a condition (wildcards `*` and `?`; `\` escapes them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryMatch {
    /// The key pattern; any key when absent.
    #[serde(default)]
    pub key: Option<String>,
    /// The value pattern.
    pub value: String,
}

/// What `on_unauthenticated_request` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnUnauthenticated {
    /// Redirect to the IdP.
    #[default]
    Authenticate,
    /// Answer 401.
    Deny,
    /// Forward without claims.
    Allow,
}

/// Which signed identity header a target receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IdentityHeader {
    /// `x-amzn-oidc-data` in ALB's padded format (the default: ALB apps need no change).
    #[default]
    Alb,
    /// `x-portcullis-jwt`: an RFC 7519 JWT with `aud`, verifiable with the JWKS.
    Jwt,
    /// Both.
    Both,
}

/// How requests from scripts and API clients (fetch/XHR, `Accept: application/json`) without a
/// session are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ApiRequests {
    /// Like a page: redirect to the IdP (ALB's behaviour).
    #[default]
    Redirect,
    /// 401 with JSON and `WWW-Authenticate`, which a script can act on.
    Deny,
}

/// How the load balancer authenticates itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// HTTP Basic (the OAuth default).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// A rule action, tagged by `type` as in ELBv2.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Action {
    /// Send to a target group.
    Forward(ForwardAction),
    /// Answer from the load balancer.
    FixedResponse(FixedResponseAction),
    /// Redirect with `#{...}` keywords.
    Redirect(RedirectAction),
    /// Authenticate against an embedded user pool.
    AuthenticateCognito(AuthenticateCognito),
    /// Authenticate against any OIDC provider.
    AuthenticateOidc(AuthenticateOidc),
    /// Check a bearer JWT (ALB's `jwt-validation`, for machine clients).
    JwtValidation(JwtValidation),
}

/// `jwt-validation`: the request must carry `Authorization: Bearer <JWT>` signed by a key of
/// `jwks_endpoint` (RS256 or ES256), with this `iss`, a live `exp` and, when present, valid `nbf`
/// and `iat`. The token is forwarded unchanged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtValidation {
    /// Run order (lowest first); the list order when absent.
    #[serde(default)]
    pub order: Option<u32>,
    /// Where the provider publishes its keys (https; http only for loopback hosts).
    pub jwks_endpoint: String,
    /// The required `iss`.
    pub issuer: String,
    /// Up to 10 more claims to check.
    #[serde(default)]
    pub additional_claims: Vec<AdditionalClaim>,
    /// Scopes the token's `scope` (or `scp`) must all carry (Portcullis; 403 otherwise).
    #[serde(default)]
    pub require_scopes: Vec<String>,
}

/// One additional claim of `jwt-validation`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdditionalClaim {
    /// `single-string` (equals one of `values`), `string-array` (an array containing one of
    /// `values`) or `space-separated-values` (a space-separated string containing one of `values`).
    pub format: String,
    /// The claim (not `exp`, `iss`, `nbf` or `iat`).
    pub name: String,
    /// 1–10 values of at most 256 characters (no spaces for `space-separated-values`).
    pub values: Vec<String>,
}

impl Action {
    /// The `type` string, for messages and access logs.
    pub fn type_name(&self) -> &'static str {
        match self {
            Action::Forward(_) => "forward",
            Action::FixedResponse(_) => "fixed-response",
            Action::Redirect(_) => "redirect",
            Action::AuthenticateCognito(_) => "authenticate-cognito",
            Action::AuthenticateOidc(_) => "authenticate-oidc",
            Action::JwtValidation(_) => "jwt-validation",
        }
    }
    /// The explicit `order`, if given.
    pub fn order(&self) -> Option<u32> {
        match self {
            Action::Forward(a) => a.order,
            Action::FixedResponse(a) => a.order,
            Action::Redirect(a) => a.order,
            Action::AuthenticateCognito(a) => a.order,
            Action::AuthenticateOidc(a) => a.order,
            Action::JwtValidation(a) => a.order,
        }
    }
    /// Whether this action ends the rule.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Action::Forward(_) | Action::FixedResponse(_) | Action::Redirect(_)
        )
    }
}

/// `forward` to one target group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardAction {
    /// Run order (lowest first); the list order when absent.
    #[serde(default)]
    pub order: Option<u32>,
    /// The target group's name (or give `target_groups`).
    #[serde(default)]
    pub target_group: Option<String>,
    /// Up to 5 weighted groups: `[{ name = "blue", weight = 80 }, { name = "green", weight = 20 }]`.
    #[serde(default)]
    pub target_groups: Vec<WeightedGroup>,
    /// Keep a client on the group it first got (cookie `AWSALBTG`).
    #[serde(default)]
    pub stickiness: Option<GroupStickiness>,
}

impl ForwardAction {
    /// The groups and weights (one group of weight 1 for `target_group`).
    pub fn groups(&self) -> Vec<(String, u32)> {
        match &self.target_group {
            Some(g) => vec![(g.clone(), 1)],
            None => self
                .target_groups
                .iter()
                .map(|w| (w.name.clone(), w.weight))
                .collect(),
        }
    }
}

/// One group of a weighted forward.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedGroup {
    /// The target group's name.
    pub name: String,
    /// 0–999 (default 1).
    #[serde(default = "one_u32")]
    pub weight: u32,
}

fn one_u32() -> u32 {
    1
}

/// `TargetGroupStickinessConfig`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupStickiness {
    /// On or off.
    pub enabled: bool,
    /// 1–604800 seconds (default 3600).
    #[serde(default = "hour")]
    pub duration_seconds: u64,
}

fn hour() -> u64 {
    3600
}

/// `fixed-response`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedResponseAction {
    /// Run order.
    #[serde(default)]
    pub order: Option<u32>,
    /// 2XX, 4XX or 5XX.
    pub status_code: u16,
    /// One of ALB's five content types.
    #[serde(default)]
    pub content_type: Option<String>,
    /// At most 1024 characters.
    #[serde(default)]
    pub message_body: Option<String>,
}

/// `redirect`; absent components keep the request's value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectAction {
    /// Run order.
    #[serde(default)]
    pub order: Option<u32>,
    /// `HTTP_301` or `HTTP_302`.
    pub status_code: String,
    /// `HTTP`, `HTTPS` or `#{protocol}`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// 1–65535 or `#{port}`.
    #[serde(default)]
    pub port: Option<String>,
    /// May contain `#{host}`.
    #[serde(default)]
    pub host: Option<String>,
    /// Starts with `/`; may contain `#{host}`, `#{path}`, `#{port}`.
    #[serde(default)]
    pub path: Option<String>,
    /// Without the leading `?`; any keyword.
    #[serde(default)]
    pub query: Option<String>,
}

/// Session settings both authenticate actions share, resolved.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Base name of the shards `<name>-0..3`.
    pub session_cookie_name: String,
    /// Requested scopes, space separated.
    pub scope: String,
    /// Maximum session lifetime in seconds (1–604800).
    pub session_timeout: u64,
    /// Up to 10 extra authorization query parameters.
    pub authentication_request_extra_params: BTreeMap<String, String>,
    /// What to do without a session.
    pub on_unauthenticated_request: OnUnauthenticated,
    /// Send a PKCE S256 challenge (ALB does not; on by default, off for strict parity).
    pub use_pkce: bool,
    /// Send an OIDC `nonce` and require it in the ID token (ALB does not; on by default).
    pub use_nonce: bool,
    /// What a script or API request without a usable session gets when a page would be redirected.
    pub unauthenticated_api_requests: ApiRequests,
    /// Which signed identity header targets get.
    pub identity_header: IdentityHeader,
    /// `aud` of the standard identity JWT (the client id when absent).
    pub jwt_audience: Option<String>,
    /// A path the balancer answers itself: ends the session, revokes its refresh token and signs
    /// out at the provider.
    pub logout_path: Option<String>,
    /// Where the provider sends the browser after signing out (a registered logout URL).
    pub logout_redirect_uri: Option<String>,
    /// Every one of these scopes must be in the access token, or 403.
    pub require_scopes: Vec<String>,
    /// The user must be in at least one of these groups (`cognito:groups`), or 403.
    pub require_groups: Vec<String>,
    /// Each named user claim must have one of the listed values, or 403.
    pub require_claims: BTreeMap<String, Vec<String>>,
}

macro_rules! session_fields {
    ($(#[$m:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        pub struct $name {
            /// Run order.
            #[serde(default)]
            pub order: Option<u32>,
            /// Base name of the shards `<name>-0..3`.
            #[serde(default = "default_session_cookie_name")]
            pub session_cookie_name: String,
            /// Requested scopes, space separated.
            #[serde(default = "default_scope")]
            pub scope: String,
            /// Maximum session lifetime in seconds (1–604800).
            #[serde(default = "default_session_timeout")]
            pub session_timeout: u64,
            /// Up to 10 extra authorization query parameters.
            #[serde(default)]
            pub authentication_request_extra_params: BTreeMap<String, String>,
            /// What to do without a session.
            #[serde(default)]
            pub on_unauthenticated_request: OnUnauthenticated,
            /// Send a PKCE S256 challenge (on by default; `false` for strict ALB parity).
            #[serde(default = "yes")]
            pub use_pkce: bool,
            /// Send an OIDC `nonce` and require it in the ID token (on by default).
            #[serde(default = "yes")]
            pub use_nonce: bool,
            /// What a script or API request without a usable session gets.
            #[serde(default)]
            pub unauthenticated_api_requests: ApiRequests,
            /// Which signed identity header targets get: ALB's, a standard JWT, or both.
            #[serde(default)]
            pub identity_header: IdentityHeader,
            /// `aud` of the standard identity JWT (the client id when absent).
            #[serde(default)]
            pub jwt_audience: Option<String>,
            /// A path the balancer answers itself to sign the user out.
            #[serde(default)]
            pub logout_path: Option<String>,
            /// Where the provider sends the browser after signing out.
            #[serde(default)]
            pub logout_redirect_uri: Option<String>,
            /// Every one of these scopes must be in the access token, or 403.
            #[serde(default)]
            pub require_scopes: Vec<String>,
            /// The user must be in at least one of these groups, or 403.
            #[serde(default)]
            pub require_groups: Vec<String>,
            /// Each named user claim must have one of the listed values, or 403.
            #[serde(default)]
            pub require_claims: BTreeMap<String, Vec<String>>,
            $($body)*
        }
        impl $name {
            /// The shared session settings.
            pub fn session(&self) -> SessionSettings {
                SessionSettings {
                    session_cookie_name: self.session_cookie_name.clone(),
                    scope: self.scope.clone(),
                    session_timeout: self.session_timeout,
                    authentication_request_extra_params: self.authentication_request_extra_params.clone(),
                    on_unauthenticated_request: self.on_unauthenticated_request,
                    use_pkce: self.use_pkce,
                    use_nonce: self.use_nonce,
                    unauthenticated_api_requests: self.unauthenticated_api_requests,
                    identity_header: self.identity_header,
                    jwt_audience: self.jwt_audience.clone(),
                    logout_path: self.logout_path.clone(),
                    logout_redirect_uri: self.logout_redirect_uri.clone(),
                    require_scopes: self.require_scopes.clone(),
                    require_groups: self.require_groups.clone(),
                    require_claims: self.require_claims.clone(),
                }
            }
        }
    };
}

session_fields! {
    /// `authenticate-cognito`: the pool is one of `user_pools`, named here.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AuthenticateCognito {
        /// The name of an embedded user pool.
        pub user_pool: String,
        /// The app client (must have a secret and allow the code flow).
        pub user_pool_client_id: String,
    }
}

session_fields! {
    /// `authenticate-oidc`: explicit endpoints, as ALB, or discovered from the issuer.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AuthenticateOidc {
        /// Expected `iss` of the ID token, copied into `x-amzn-oidc-data`.
        pub issuer: String,
        /// Where browsers are sent (discovered from the issuer when absent).
        #[serde(default)]
        pub authorization_endpoint: Option<String>,
        /// Called server to server with the code (discovered when absent).
        #[serde(default)]
        pub token_endpoint: Option<String>,
        /// Called server to server with the access token (discovered when absent).
        #[serde(default)]
        pub user_info_endpoint: Option<String>,
        /// The OAuth client id.
        pub client_id: String,
        /// The client secret (or `client_secret_env`).
        #[serde(default)]
        pub client_secret: Option<String>,
        /// Read the client secret from this environment variable.
        #[serde(default)]
        pub client_secret_env: Option<String>,
        /// Basic (default) or post.
        #[serde(default)]
        pub token_endpoint_auth_method: ClientAuthMethod,
        /// Where `logout_path` revokes the refresh token (RFC 7009), if the provider has one.
        #[serde(default)]
        pub revocation_endpoint: Option<String>,
        /// The provider's RP-initiated logout endpoint (`id_token_hint`, `post_logout_redirect_uri`).
        #[serde(default)]
        pub end_session_endpoint: Option<String>,
    }
}

/// A target group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    /// ≤32 characters, alphanumerics and `-`.
    pub name: String,
    /// Protocol to the targets: `HTTP` or `HTTPS` (certificates not validated, as at ALB).
    #[serde(default = "default_tg_protocol")]
    pub protocol: Protocol,
    /// `HTTP1` (default), `HTTP2` or `GRPC`: what the targets speak; a request that does not
    /// fit gets 464.
    #[serde(default)]
    pub protocol_version: ProtocolVersion,
    /// `instance` (default), `ip` or `lambda`.
    #[serde(default)]
    pub target_type: TargetType,
    /// The function of a `lambda` group.
    #[serde(default)]
    pub lambda: Option<LambdaFunction>,
    /// `deregistration_delay.timeout_seconds` (0–3600, default 300): how long a target removed by
    /// a reload may finish the requests it has.
    #[serde(default = "five_minutes")]
    pub deregistration_delay_seconds: u64,
    /// `slow_start.duration_seconds` (30–900, 0 = off): a target that becomes healthy gets a
    /// share rising linearly over this time.
    #[serde(default)]
    pub slow_start_seconds: u64,
    /// `load_balancing.algorithm.anomaly_mitigation` (`weighted_random` only): send less to a
    /// target whose 5xx and connection-error rate stands out from its peers'.
    #[serde(default)]
    pub anomaly_mitigation: bool,
    /// `target_group_health.unhealthy_state_routing.minimum_healthy_targets.count` (default 1):
    /// with fewer routable targets, requests go to every target (fail-open).
    #[serde(default = "one")]
    pub minimum_healthy_targets_count: u32,
    /// `target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage` (1–100,
    /// default off): the same, as a share of the targets.
    #[serde(default)]
    pub minimum_healthy_targets_percentage: Option<u32>,
    /// Default port for targets that give none.
    #[serde(default)]
    pub port: Option<u16>,
    /// Static targets.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// How targets are checked (ALB's defaults when absent).
    #[serde(default)]
    pub health_check: HealthCheck,
    /// Keep a client on one target (`lb_cookie`: cookie `AWSALB`; `app_cookie`: `AWSALBAPP-N`).
    #[serde(default)]
    pub stickiness: Option<TargetStickiness>,
    /// `load_balancing.algorithm.type`: `round_robin` (default), `least_outstanding_requests` or
    /// `weighted_random`.
    #[serde(default = "round_robin")]
    pub load_balancing_algorithm: String,
}

fn round_robin() -> String {
    "round_robin".into()
}
fn one() -> u32 {
    1
}
fn five_minutes() -> u64 {
    300
}

/// A target group's `ProtocolVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ProtocolVersion {
    /// HTTP/1.1 to the targets, whatever the client spoke.
    #[default]
    HTTP1,
    /// HTTP/2 to the targets; HTTP/1.1 clients get 464.
    HTTP2,
    /// gRPC over HTTP/2; other requests get 464 (HTTP/2 POSTs excepted).
    GRPC,
}

/// A target group's `TargetType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    /// Targets by address (the same as `ip` here).
    #[default]
    Instance,
    /// Targets by address.
    Ip,
    /// One function, invoked with ALB's event JSON.
    Lambda,
}

/// The function behind a `lambda` target group, reached through the Lambda Invoke API
/// (`POST <endpoint>/2015-03-31/functions/<function>/invocations`), as the Lambda Runtime Interface
/// Emulator serves it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaFunction {
    /// Base URL of the invoke API, such as `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// The function name (the emulator's is `function`).
    #[serde(default = "function_name")]
    pub function: String,
    /// `lambda.multi_value_headers.enabled`: headers and query as arrays.
    #[serde(default)]
    pub multi_value_headers: bool,
    /// Seconds an invocation may take before the client gets 502 (default 30).
    #[serde(default = "thirty")]
    pub timeout_seconds: u64,
}

fn function_name() -> String {
    "function".into()
}

/// A target group's `stickiness.*` attributes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetStickiness {
    /// On or off.
    pub enabled: bool,
    /// `lb_cookie` (default) or `app_cookie`.
    #[serde(default = "lb_cookie", rename = "type")]
    pub kind: String,
    /// 1–604800 seconds (default 86400).
    #[serde(default = "day")]
    pub duration_seconds: u64,
    /// `app_cookie`: the application's cookie that starts and keeps stickiness.
    #[serde(default)]
    pub cookie_name: Option<String>,
}

fn lb_cookie() -> String {
    "lb_cookie".into()
}
fn day() -> u64 {
    86400
}

/// A target group's health check (ALB's `HealthCheck*` settings and defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Checks run (default true, as ALB for instance and IP targets; never for `lambda`).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `HTTP` (default) or `HTTPS` (not validated); gRPC groups check over HTTP/2.
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// The path asked for (default `/`).
    #[serde(default = "slash")]
    pub path: String,
    /// `traffic-port` (default) or a port number.
    #[serde(default = "traffic_port")]
    pub port: String,
    /// Seconds between checks of a target (ALB: 5–300, default 30; here from 1).
    #[serde(default = "thirty")]
    pub interval_seconds: u64,
    /// Seconds a check may take (ALB: 2–120, default 5; here from 1, and less than the interval).
    #[serde(default = "five")]
    pub timeout_seconds: u64,
    /// Consecutive passes that make an unhealthy target healthy (2–10, default 5).
    #[serde(default = "five_u32")]
    pub healthy_threshold_count: u32,
    /// Consecutive failures that make a target unhealthy (2–10, default 2).
    #[serde(default = "two")]
    pub unhealthy_threshold_count: u32,
    /// Status codes that pass: `200`, `200,202` or `200-299` (200–499; default `200`).
    #[serde(default = "ok_code")]
    pub matcher: String,
    /// gRPC groups: `grpc-status` codes that pass, in the same forms (0–99; default `12`,
    /// "unimplemented", which any gRPC server answers for ALB's `/AWS.ALB/healthcheck`).
    #[serde(default = "grpc_unimplemented")]
    pub grpc_code: String,
}

fn grpc_unimplemented() -> String {
    "12".into()
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            enabled: true,
            protocol: None,
            path: slash(),
            port: traffic_port(),
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold_count: 5,
            unhealthy_threshold_count: 2,
            matcher: ok_code(),
            grpc_code: grpc_unimplemented(),
        }
    }
}

fn slash() -> String {
    "/".into()
}
fn traffic_port() -> String {
    "traffic-port".into()
}
fn thirty() -> u64 {
    30
}
fn five() -> u64 {
    5
}
fn five_u32() -> u32 {
    5
}
fn two() -> u32 {
    2
}
fn ok_code() -> String {
    "200".into()
}

impl HealthCheck {
    /// Whether `status` passes the matcher (validated: codes and ranges within 200–499).
    pub fn passes(&self, status: u16) -> bool {
        code_matches(&self.matcher, status)
    }

    /// Whether a `grpc-status` passes `grpc_code`.
    pub fn passes_grpc(&self, status: u16) -> bool {
        code_matches(&self.grpc_code, status)
    }
}

/// Whether `code` is in a matcher list such as `200`, `200,202` or `200-299`.
pub fn code_matches(list: &str, code: u16) -> bool {
    list.split(',')
        .any(|part| match part.trim().split_once('-') {
            Some((a, b)) => match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
                (Ok(a), Ok(b)) => (a..=b).contains(&code),
                _ => false,
            },
            None => part.trim().parse::<u16>() == Ok(code),
        })
}

/// One target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// An IP address or host name.
    pub id: String,
    /// Port, or the group's.
    #[serde(default)]
    pub port: Option<u16>,
}

/// An embedded user pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPool {
    /// The name rules refer to.
    pub name: String,
    /// User groups (created at start; `cognito:groups` in tokens).
    #[serde(default)]
    pub groups: Vec<Group>,
    /// `<region>_<alnum>`; derived from the name when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// Where the hosted UI and OAuth endpoints are served.
    pub domain: Domain,
    /// Resource servers with custom scopes.
    #[serde(default)]
    pub resource_servers: Vec<ResourceServer>,
    /// App clients.
    #[serde(default)]
    pub clients: Vec<Client>,
    /// Users created at start when absent.
    #[serde(default)]
    pub users: Vec<SeedUser>,
    /// Access and ID token lifetime in seconds (300–86400).
    #[serde(default = "default_token_validity")]
    pub token_validity_seconds: u64,
    /// Keys that may sign admin API requests (SigV4); without any, admin operations are refused.
    #[serde(default)]
    pub access_keys: Vec<AccessKey>,
    /// Rules for passwords set by users and admins.
    #[serde(default)]
    pub password_policy: PasswordPolicy,
    /// Whether anyone may sign up (hosted UI and `SignUp`); off by default.
    #[serde(default)]
    pub allow_self_sign_up: bool,
    /// Where confirmation and reset codes are delivered.
    #[serde(default)]
    pub messages: Messages,
    /// `custom:` attributes users may have (Cognito's schema); others are refused.
    #[serde(default)]
    pub custom_attributes: Vec<CustomAttribute>,
    /// `OFF` (default), `OPTIONAL` (users who set up TOTP are asked for a code) or `ON` (everyone;
    /// users set TOTP up at their next sign-in).
    #[serde(default = "mfa_off")]
    pub mfa_configuration: String,
    /// Load shedding and rate limits of every endpoint that checks a secret.
    #[serde(default)]
    pub rate_limits: RateLimits,
    /// External OIDC providers whose users may sign in (federation, as Cognito's).
    #[serde(default)]
    pub identity_providers: Vec<crate::IdentityProvider>,
}

/// A token bucket: up to `burst` requests at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Requests allowed at once (1–10000).
    pub burst: u32,
    /// Requests regained per minute (1–60000).
    pub per_minute: u32,
}

/// Why the pool sheds and throttles: guessing and flooding must cost the attacker, not the users.
/// Buckets live in the store, so nodes sharing PostgreSQL share them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Secret checks (passwords, codes, client secrets, challenge answers) from one client address.
    #[serde(default = "default_per_ip")]
    pub per_ip: Bucket,
    /// Secret checks naming one user (or one app client at the token endpoint).
    #[serde(default = "default_per_user")]
    pub per_user: Bucket,
    /// Failed client authentications (client secrets at `/oauth2/token` and `/oauth2/revoke`,
    /// admin API signatures), per client address and per client or access key; checked before
    /// each comparison, spent by each failure.
    #[serde(default = "default_failed_client_auth")]
    pub failed_client_auth: Bucket,
    /// Password hashes that may wait for a hashing worker; beyond them requests are refused at
    /// once (503, `TooManyRequestsException`). 0–10000.
    #[serde(default = "default_hash_queue")]
    pub hash_queue: usize,
    /// Password hashes computed at once (each holds argon2's 19 MiB); 1–64.
    #[serde(default = "default_hash_workers")]
    pub hash_workers: usize,
    /// Proxies whose `X-Forwarded-For` is believed (CIDRs); otherwise the client address is the
    /// TCP peer of the pool's listener.
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

fn default_per_ip() -> Bucket {
    Bucket {
        burst: 100,
        per_minute: 120,
    }
}
fn default_per_user() -> Bucket {
    Bucket {
        burst: 30,
        per_minute: 30,
    }
}
fn default_failed_client_auth() -> Bucket {
    Bucket {
        burst: 20,
        per_minute: 10,
    }
}
fn default_hash_queue() -> usize {
    32
}
fn default_hash_workers() -> usize {
    2
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_ip: default_per_ip(),
            per_user: default_per_user(),
            failed_client_auth: default_failed_client_auth(),
            hash_queue: default_hash_queue(),
            hash_workers: default_hash_workers(),
            trusted_proxies: Vec::new(),
        }
    }
}

fn mfa_off() -> String {
    "OFF".into()
}

/// An access key pair for the admin API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    /// `AKIA...`-style id (16–128 characters).
    pub access_key_id: String,
    /// The secret in the file (tests and demos).
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Or read it from this environment variable.
    #[serde(default)]
    pub secret_access_key_env: Option<String>,
}

/// Cognito's `PasswordPolicyType`; the defaults are Cognito's (8, all four classes, 7 days).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicy {
    /// 6–99.
    #[serde(default = "eight")]
    pub minimum_length: usize,
    /// At least one A–Z.
    #[serde(default = "yes")]
    pub require_uppercase: bool,
    /// At least one a–z.
    #[serde(default = "yes")]
    pub require_lowercase: bool,
    /// At least one 0–9.
    #[serde(default = "yes")]
    pub require_numbers: bool,
    /// At least one of Cognito's symbols.
    #[serde(default = "yes")]
    pub require_symbols: bool,
    /// Days an admin-set temporary password works (0–365).
    #[serde(default = "seven")]
    pub temporary_password_validity_days: u64,
}

fn eight() -> usize {
    8
}
fn seven() -> u64 {
    7
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            minimum_length: 8,
            require_uppercase: true,
            require_lowercase: true,
            require_numbers: true,
            require_symbols: true,
            temporary_password_validity_days: 7,
        }
    }
}

/// The symbols Cognito counts for `require_symbols`.
pub const PASSWORD_SYMBOLS: &str = "^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+- ";

impl PasswordPolicy {
    /// Why a password breaks the policy, in Cognito's words, if it does.
    pub fn problem(&self, pw: &str) -> Option<String> {
        let n = pw.chars().count();
        if n < self.minimum_length {
            return Some("Password not long enough".into());
        }
        if n > 256 {
            return Some("Password is longer than 256 characters".into());
        }
        if self.require_uppercase && !pw.chars().any(|c| c.is_ascii_uppercase()) {
            return Some("Password must have uppercase characters".into());
        }
        if self.require_lowercase && !pw.chars().any(|c| c.is_ascii_lowercase()) {
            return Some("Password must have lowercase characters".into());
        }
        if self.require_numbers && !pw.chars().any(|c| c.is_ascii_digit()) {
            return Some("Password must have numeric characters".into());
        }
        if self.require_symbols && !pw.chars().any(|c| PASSWORD_SYMBOLS.contains(c)) {
            return Some("Password must have symbol characters".into());
        }
        None
    }
}

/// Delivery of confirmation and reset codes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Messages {
    /// A JSON-lines file each message is appended to (default: `<state_dir>/outbox/<pool>.jsonl`);
    /// used when no `smtp` is set. Messages are also logged, without their codes.
    #[serde(default)]
    pub outbox: Option<PathBuf>,
    /// Send email through this SMTP server instead.
    #[serde(default)]
    pub smtp: Option<Smtp>,
}

/// An SMTP relay for codes sent by email.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    /// Host name or address.
    pub host: String,
    /// Port (default 587).
    #[serde(default = "smtp_port")]
    pub port: u16,
    /// `starttls` (default: upgrade before sending anything else), `tls` (TLS from the first byte,
    /// port 465) or `none` (only for a relay on a trusted network, such as localhost).
    #[serde(default = "starttls")]
    pub security: String,
    /// The sender address (`From`).
    pub from: String,
    /// User name for AUTH PLAIN (optional).
    #[serde(default)]
    pub username: Option<String>,
    /// The environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Or the password in the file (tests; prefer `password_env`).
    #[serde(default)]
    pub password: Option<String>,
}

fn smtp_port() -> u16 {
    587
}
fn starttls() -> String {
    "starttls".into()
}

/// A `custom:` attribute of the pool's schema.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomAttribute {
    /// The name without `custom:` (1–20 characters).
    pub name: String,
    /// `String` (default), `Number`, `Boolean` or `DateTime`.
    #[serde(default = "string_type")]
    pub attribute_data_type: String,
    /// Whether it can change after sign-up (default true).
    #[serde(default = "yes")]
    pub mutable: bool,
}

fn string_type() -> String {
    "String".into()
}

/// Where a pool is served.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// `host:port` to bind.
    pub listen: String,
    /// The URL browsers and the load balancer use.
    pub base_url: String,
    /// Serve HTTPS with these (as an HTTPS listener's); needs an `https` base URL.
    #[serde(default)]
    pub certificates: Vec<Certificate>,
    /// Accept serving plain HTTP beyond loopback (an `http` base URL off this machine, or a
    /// listener without certificates on a non-loopback address): passwords and codes in clear.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

/// A resource server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceServer {
    /// The prefix of its scopes (`tasks` in `tasks/read`).
    pub identifier: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its scopes.
    #[serde(default)]
    pub scopes: Vec<ResourceServerScope>,
}

/// A custom scope.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceServerScope {
    /// The part after the `/`.
    pub name: String,
    /// What it allows.
    #[serde(default)]
    pub description: Option<String>,
}

/// An app client.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// The client id.
    pub client_id: String,
    /// Display name.
    #[serde(default)]
    pub client_name: Option<String>,
    /// Generate a secret once and keep it in the store.
    #[serde(default)]
    pub generate_secret: bool,
    /// Or set one (24–64 characters).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// `code` (and later `implicit`, `client_credentials`).
    #[serde(default)]
    pub allowed_oauth_flows: Vec<String>,
    /// Scopes the client may obtain.
    #[serde(default)]
    pub allowed_oauth_scopes: Vec<String>,
    /// Registered redirect URIs.
    #[serde(default)]
    pub callback_urls: Vec<String>,
    /// Where `/logout?logout_uri=` may send the browser.
    #[serde(default)]
    pub logout_urls: Vec<String>,
    /// Access-token lifetime in `token_validity_units.access_token` (5 minutes to 1 day).
    #[serde(default)]
    pub access_token_validity: Option<u64>,
    /// ID-token lifetime in `token_validity_units.id_token` (5 minutes to 1 day).
    #[serde(default)]
    pub id_token_validity: Option<u64>,
    /// Refresh-token lifetime in `token_validity_units.refresh_token` (1 hour to 10 years; 0 = 30 days).
    #[serde(default)]
    pub refresh_token_validity: Option<u64>,
    /// Units of the three validities (Cognito's defaults: hours, hours, days).
    #[serde(default)]
    pub token_validity_units: TokenValidityUnits,
    /// Attributes the client may read (ID token and userInfo); all when absent.
    #[serde(default)]
    pub read_attributes: Option<Vec<String>>,
    /// Refresh-token rotation (off by default, as Cognito).
    #[serde(default)]
    pub refresh_token_rotation: Option<RefreshTokenRotation>,
    /// `ExplicitAuthFlows` for the API (`ALLOW_USER_PASSWORD_AUTH`, ...); Cognito's default
    /// (`ALLOW_REFRESH_TOKEN_AUTH`, `ALLOW_USER_SRP_AUTH`, `ALLOW_CUSTOM_AUTH`) when absent.
    #[serde(default)]
    pub explicit_auth_flows: Option<Vec<String>>,
    /// `ENABLED` (default here: sign-in and recovery errors never reveal whether a user exists) or
    /// `LEGACY` (Cognito's API default: `UserNotFoundException`).
    #[serde(default = "enabled_str")]
    pub prevent_user_existence_errors: String,
    /// Whether `/oauth2/revoke` and `RevokeToken` work for this client (Cognito's default: true).
    #[serde(default = "yes")]
    pub enable_token_revocation: bool,
    /// Minutes a challenge session (`NEW_PASSWORD_REQUIRED`) stays valid (3–15).
    #[serde(default = "three")]
    pub auth_session_validity: u64,
    /// Attributes the client may write (all mutable ones when absent).
    #[serde(default)]
    pub write_attributes: Option<Vec<String>>,
    /// Logo shown on this client's hosted-UI pages (an https or data: URL).
    #[serde(default)]
    pub logo_url: Option<String>,
    /// Extra CSS for this client's hosted-UI pages (at most 4 KB; `<` is refused).
    #[serde(default)]
    pub css: Option<String>,
    /// `AllowedOAuthFlowsUserPoolClient`: whether the OAuth endpoints serve this client at all
    /// (default: true when it has OAuth flows).
    #[serde(default)]
    pub allowed_oauth_flows_user_pool_client: Option<bool>,
    /// `DefaultRedirectURI` (one of `callback_urls`).
    #[serde(default)]
    pub default_redirect_uri: Option<String>,
    /// `SupportedIdentityProviders`: `COGNITO` (the pool's own users) and provider names; the
    /// hosted UI offers these. `["COGNITO"]` when absent.
    #[serde(default)]
    pub supported_identity_providers: Option<Vec<String>>,
    /// Ours, not Cognito's: where the pool POSTs an OIDC Back-Channel Logout token when a
    /// sign-in session that gave this client tokens ends.
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// Ours: the client needs `sid` in logout tokens (they always carry it).
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
}

impl Client {
    /// The providers the client's users may sign in with (`["COGNITO"]` when not set).
    pub fn identity_providers(&self) -> Vec<String> {
        self.supported_identity_providers
            .clone()
            .unwrap_or_else(|| vec![crate::COGNITO_PROVIDER.to_string()])
    }

    /// Whether the client offers the pool's own sign-in (user name and password).
    pub fn supports_cognito(&self) -> bool {
        self.supported_identity_providers
            .as_ref()
            .is_none_or(|l| l.iter().any(|p| p == crate::COGNITO_PROVIDER))
    }
}

fn enabled_str() -> String {
    "ENABLED".into()
}
fn three() -> u64 {
    3
}

/// Cognito's `ExplicitAuthFlows` when a client names none.
pub const DEFAULT_EXPLICIT_AUTH_FLOWS: [&str; 3] = [
    "ALLOW_REFRESH_TOKEN_AUTH",
    "ALLOW_USER_SRP_AUTH",
    "ALLOW_CUSTOM_AUTH",
];

impl Client {
    /// Whether the OAuth endpoints may serve this client.
    pub fn oauth_enabled(&self) -> bool {
        self.allowed_oauth_flows_user_pool_client
            .unwrap_or(!self.allowed_oauth_flows.is_empty())
    }

    /// Whether an `ExplicitAuthFlows` value is allowed.
    pub fn allows_auth_flow(&self, flow: &str) -> bool {
        match &self.explicit_auth_flows {
            Some(f) => f.iter().any(|x| x == flow),
            None => DEFAULT_EXPLICIT_AUTH_FLOWS.contains(&flow),
        }
    }
}

/// `RefreshTokenRotation`: each refresh returns a new refresh token; the old one keeps working for
/// the grace period (for retries), then no more.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshTokenRotation {
    /// `ENABLED` or `DISABLED`.
    pub feature: String,
    /// 0–60 seconds.
    #[serde(default)]
    pub retry_grace_period_seconds: u64,
}

impl RefreshTokenRotation {
    /// Whether rotation is on.
    pub fn enabled(&self) -> bool {
        self.feature == "ENABLED"
    }
}

/// A unit of token validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Seconds.
    Seconds,
    /// Minutes.
    Minutes,
    /// Hours.
    Hours,
    /// Days.
    Days,
}

impl TimeUnit {
    /// Seconds in one unit.
    pub fn seconds(self) -> u64 {
        match self {
            TimeUnit::Seconds => 1,
            TimeUnit::Minutes => 60,
            TimeUnit::Hours => 3600,
            TimeUnit::Days => 86400,
        }
    }
}

/// `TokenValidityUnits`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenValidityUnits {
    /// Unit of `access_token_validity`.
    #[serde(default = "hours")]
    pub access_token: TimeUnit,
    /// Unit of `id_token_validity`.
    #[serde(default = "hours")]
    pub id_token: TimeUnit,
    /// Unit of `refresh_token_validity`.
    #[serde(default = "days")]
    pub refresh_token: TimeUnit,
}

impl Default for TokenValidityUnits {
    fn default() -> Self {
        TokenValidityUnits {
            access_token: TimeUnit::Hours,
            id_token: TimeUnit::Hours,
            refresh_token: TimeUnit::Days,
        }
    }
}

fn hours() -> TimeUnit {
    TimeUnit::Hours
}
fn days() -> TimeUnit {
    TimeUnit::Days
}

impl Client {
    /// Access-token lifetime in seconds, or `default`.
    pub fn access_seconds(&self, default: u64) -> u64 {
        self.access_token_validity.map_or(default, |v| {
            v * self.token_validity_units.access_token.seconds()
        })
    }
    /// ID-token lifetime in seconds, or `default`.
    pub fn id_seconds(&self, default: u64) -> u64 {
        self.id_token_validity.map_or(default, |v| {
            v * self.token_validity_units.id_token.seconds()
        })
    }
    /// Refresh-token lifetime in seconds (30 days by default and for 0).
    pub fn refresh_seconds(&self) -> u64 {
        match self.refresh_token_validity {
            None | Some(0) => 30 * 86400,
            Some(v) => v * self.token_validity_units.refresh_token.seconds(),
        }
    }
}

/// A user created at start when absent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    /// Immutable user name.
    pub username: String,
    /// Password in the file (for tests and demos).
    #[serde(default)]
    pub password: Option<String>,
    /// Or read it from this environment variable.
    #[serde(default)]
    pub password_env: Option<String>,
    /// `email`, `name`, `custom:*`, ...
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Groups of this pool the user belongs to (→ `cognito:groups`).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A user group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// 1–128 characters, unique in the pool.
    pub name: String,
    /// Lower wins; groups without one come last.
    #[serde(default)]
    pub precedence: Option<u32>,
    /// What the group is for.
    #[serde(default)]
    pub description: Option<String>,
}

fn yes() -> bool {
    true
}
fn default_state_dir() -> PathBuf {
    PathBuf::from(".portcullis")
}
fn default_region() -> String {
    "us-east-1".into()
}
fn default_account_id() -> String {
    "000000000000".into()
}
fn default_bind() -> String {
    "0.0.0.0".into()
}
fn default_client_keep_alive() -> u64 {
    3600
}
fn default_idle_timeout() -> u64 {
    60
}
fn default_session_cookie_name() -> String {
    "AWSELBAuthSessionCookie".into()
}
fn default_scope() -> String {
    "openid".into()
}
fn default_session_timeout() -> u64 {
    604_800
}
fn default_tg_protocol() -> Protocol {
    Protocol::HTTP
}
fn default_token_validity() -> u64 {
    3600
}
