//! Embedded user pools: clients, resource servers, domains, policies, users and groups.

use super::*;

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
