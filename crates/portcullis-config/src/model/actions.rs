//! Rule actions: forward, redirect, fixed-response and authenticate-oidc / authenticate-cognito.

use super::*;

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
