//! The immutable, compiled view of the config that the request path reads. It is built once per
//! (re)load and swapped atomically; nothing on the request path waits on the control side.

use crate::rules::Condition;
use crate::target_group::TargetGroup;
use bytes::Bytes;
use portcullis_auth::oidc::Discovery;
use portcullis_auth::{AuthAction, Provider, ProviderConfig};
use portcullis_config::{
    Action, AuthenticateCognito, Config, Protocol, RedirectAction, ordered_actions,
};
use portcullis_core::SecretError;
use portcullis_verify::client::{HttpClient, TrustError};
use std::collections::HashMap;
use std::sync::Arc;

/// Resolves `authenticate-cognito` to provider settings (the embedded pool's endpoints and secret).
pub type CognitoResolver =
    dyn Fn(&AuthenticateCognito) -> Result<CognitoProvider, CognitoError> + Send + Sync;

/// Why an `authenticate-cognito` action could not be resolved against the embedded pools.
#[derive(Debug, thiserror::Error)]
pub enum CognitoError {
    /// No embedded pool has this name.
    #[error("unknown user pool `{0}`")]
    UnknownPool(String),
    /// The app client has no secret (the balancer authenticates to the pool with it).
    #[error("client `{client}` of user pool `{pool}` has no secret")]
    NoSecret {
        /// The pool.
        pool: String,
        /// The app client id.
        client: String,
    },
    /// The pool's own certificates cannot be trusted by the balancer's client.
    #[error("user pool `{pool}`: {source}")]
    Trust {
        /// The pool.
        pool: String,
        /// Why.
        #[source]
        source: TrustError,
    },
}

/// Why a config could not be compiled into a [`Snapshot`]; names the listener and rule.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// `authenticate-cognito` could not be resolved.
    #[error("listeners[{listener}] rule {rule}: {source}")]
    Cognito {
        /// The listener's index.
        listener: usize,
        /// The rule (`<slot>/<priority|default>`).
        rule: String,
        /// Why.
        #[source]
        source: CognitoError,
    },
    /// `authenticate-oidc`'s client secret could not be read.
    #[error("listeners[{listener}] rule {rule}: {source}")]
    ClientSecret {
        /// The listener's index.
        listener: usize,
        /// The rule.
        rule: String,
        /// Why.
        #[source]
        source: SecretError,
    },
    /// An endpoint is neither configured nor discovered.
    #[error("listeners[{listener}] rule {rule}: no {endpoint} and no discovery")]
    NoEndpoint {
        /// The listener's index.
        listener: usize,
        /// The rule.
        rule: String,
        /// The endpoint's setting (`token_endpoint`).
        endpoint: &'static str,
    },
    /// A forward names a group the config lacks.
    #[error("unknown target group {0}")]
    UnknownTargetGroup(String),
    /// A rule has no forward, fixed-response or redirect.
    #[error("listeners[{listener}] rule {rule}: no terminal action")]
    NoTerminal {
        /// The listener's index.
        listener: usize,
        /// The rule.
        rule: String,
    },
}

/// An embedded pool as the provider of `authenticate-cognito`.
pub struct CognitoProvider {
    /// Its endpoints and the app client's secret.
    pub config: ProviderConfig,
    /// A client that trusts the certificates the pool serves itself (self-signed ones included),
    /// for a pool on HTTPS; `None` uses the shared client (public roots).
    pub http: Option<HttpClient>,
}

/// What a rule ends with.
pub enum Terminal {
    /// Send to one of these groups.
    Forward(Arc<crate::target_group::Forward>),
    /// Answer with this.
    Fixed {
        /// Status.
        status: u16,
        /// Content type.
        content_type: String,
        /// Body.
        body: Bytes,
    },
    /// Redirect as configured.
    Redirect(RedirectAction),
}

/// A compiled rule.
pub struct Rule {
    /// `<listener index>/<priority|default>`, carried in `state`.
    pub id: String,
    /// `None` for the default rule.
    pub priority: Option<u32>,
    /// All must match.
    pub conditions: Vec<Condition>,
    /// The authenticate action, if any.
    pub auth: Option<Arc<AuthAction>>,
    /// The `jwt-validation` action, if any.
    pub jwt: Option<Arc<portcullis_auth::jwt_validation::JwtValidator>>,
    /// The terminal action.
    pub terminal: Terminal,
}

impl Rule {
    /// The access-log `matched_rule_priority`.
    pub fn log_priority(&self) -> String {
        self.priority.map_or("0".into(), |p| p.to_string())
    }
}

/// A compiled listener.
pub struct Listener {
    /// HTTP or HTTPS.
    pub protocol: Protocol,
    /// The port clients connect to.
    pub port: u16,
    /// Rules by ascending priority.
    pub rules: Vec<Rule>,
    /// The rules indexed by the first path segment they require.
    pub index: crate::rules::RuleIndex,
    /// The default rule.
    pub default: Rule,
    /// Whether any rule authenticates (then `/oauth2/idpresponse` is intercepted).
    pub has_auth: bool,
    /// `logout_path`s of this listener's authenticate actions, answered by the balancer.
    pub logout_paths: Vec<(String, Arc<AuthAction>)>,
    /// Every authenticate action of the listener: a back-channel logout token is checked
    /// against the one whose provider issued it.
    pub auth_actions: Vec<Arc<AuthAction>>,
    /// Cookies removed before forwarding (the same on every listener: browsers ignore ports).
    pub owned_cookies: Arc<crate::headers::OwnedCookies>,
    /// `routing.http.*` attributes (the same for every listener).
    pub routing: crate::headers::Routing,
}

impl Listener {
    /// The authenticate action of the rule `id` (from a callback's `state`).
    pub fn auth_by_rule(&self, id: &str) -> Option<Arc<AuthAction>> {
        self.rules
            .iter()
            .chain(std::iter::once(&self.default))
            .find(|r| r.id == id)?
            .auth
            .clone()
    }
}

/// Everything the request path needs, immutable.
pub struct Snapshot {
    /// Listeners by slot (`None`: a slot a reload emptied).
    pub listeners: Vec<Option<Listener>>,
    /// Target groups by name.
    pub target_groups: HashMap<String, Arc<TargetGroup>>,
}

/// Identity of this load balancer for ARNs.
#[derive(Clone)]
pub struct Identity {
    /// `arn:aws:elasticloadbalancing:<region>:<account>`.
    pub arn_prefix: String,
    /// 16 hex digits.
    pub id: String,
    /// Config name.
    pub name: String,
}

impl Identity {
    /// `app/<name>/<id>`.
    pub fn elb(&self) -> String {
        format!("app/{}/{}", self.name, self.id)
    }
    /// The load balancer ARN (the `signer`).
    pub fn arn(&self) -> String {
        format!(
            "{}:loadbalancer/app/{}/{}",
            self.arn_prefix, self.name, self.id
        )
    }
    fn target_group_arn(&self, name: &str) -> String {
        let d = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            format!("{}/{name}", self.id).as_bytes(),
        );
        format!(
            "{}:targetgroup/{name}/{}",
            self.arn_prefix,
            hex::encode(&d.as_ref()[..8])
        )
    }
}

/// The credential cookies of a config, removed on every listener and rule: the `-N` shards of
/// every `session_cookie_name` of any authenticate action (and ALB's default name) and
/// `AWSALBAuthNonce`, unless `forward_auth_cookies` passes them as ALB does; and the user pools'
/// hosted-UI cookies on requests for a pool's host.
pub fn owned_cookies(config: &Config) -> crate::headers::OwnedCookies {
    let mut owned = crate::headers::OwnedCookies::default();
    if !config.load_balancer.forward_auth_cookies {
        owned.shards.push("AWSELBAuthSessionCookie".into());
        for l in &config.listeners {
            let actions = l
                .rules
                .iter()
                .flat_map(|r| r.actions.iter())
                .chain(l.default_actions.iter());
            for a in actions {
                match a {
                    Action::AuthenticateCognito(c) => {
                        owned.shards.push(c.session().session_cookie_name)
                    }
                    Action::AuthenticateOidc(o) => {
                        owned.shards.push(o.session().session_cookie_name)
                    }
                    _ => {}
                }
            }
        }
        owned.shards.sort();
        owned.shards.dedup();
        owned
            .names
            .push(portcullis_auth::state::NONCE_COOKIE.to_string());
    }
    for p in &config.user_pools {
        let from_url = p
            .domain
            .base_url
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_owned));
        let listen = crate::rules::strip_port(&p.domain.listen).to_string();
        for h in from_url.into_iter().chain(std::iter::once(listen)) {
            if !h.is_empty() && !owned.pool_hosts.contains(&h) {
                owned.pool_hosts.push(h);
            }
        }
    }
    owned
}

/// Compiles a validated config. `placement[i]` is listener `i`'s slot (its index in
/// `Snapshot::listeners`, stable across reloads) and bound port. Target groups get `clock`, the
/// balancer's.
#[allow(clippy::too_many_arguments)] // The running balancer's parts, each one a reload keeps.
pub fn compile(
    config: &Config,
    placement: &[(usize, u16)],
    identity: &Identity,
    clock: &Arc<portcullis_core::Clock>,
    cognito: &CognitoResolver,
    http: &HttpClient,
    discovered: &HashMap<String, Discovery>,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, CompileError> {
    let groups: HashMap<String, Arc<TargetGroup>> = config
        .target_groups
        .iter()
        .map(|tg| {
            (
                tg.name.clone(),
                Arc::new(TargetGroup::new(
                    tg,
                    identity.target_group_arn(&tg.name),
                    previous.and_then(|p| p.target_groups.get(&tg.name).map(Arc::as_ref)),
                    clock.clone(),
                )),
            )
        })
        .collect();
    let owned_cookies = Arc::new(owned_cookies(config));
    let slots = placement.iter().map(|(s, _)| s + 1).max().unwrap_or(0);
    let mut listeners: Vec<Option<Listener>> = (0..slots).map(|_| None).collect();
    for (i, l) in config.listeners.iter().enumerate() {
        let (slot, bound_port) = placement.get(i).copied().unwrap_or((i, l.port));
        let compile_rule = |priority: Option<u32>,
                            conditions: &[portcullis_config::Condition],
                            actions: &[Action]| {
            // By slot, so that a login begun before a reload finds its rule after it.
            let id = format!(
                "{slot}/{}",
                priority.map_or("default".into(), |p| p.to_string())
            );
            let mut auth = None;
            let mut jwt = None;
            let mut terminal = None;
            for a in ordered_actions(actions) {
                match a {
                    Action::AuthenticateCognito(c) => {
                        let provider = cognito(c).map_err(|source| CompileError::Cognito {
                            listener: i,
                            rule: id.clone(),
                            source,
                        })?;
                        let client = provider.http.unwrap_or_else(|| http.clone());
                        auth = Some(Arc::new(AuthAction::new(
                            id.clone(),
                            Arc::new(Provider::new(provider.config, client)),
                            c.session(),
                        )));
                    }
                    Action::AuthenticateOidc(o) => {
                        let secret = portcullis_core::secret::required(
                            o.client_secret.as_deref(),
                            o.client_secret_env.as_deref(),
                            "client_secret_env",
                        )
                        .map_err(|source| CompileError::ClientSecret {
                            listener: i,
                            rule: id.clone(),
                            source,
                        })?;
                        // Explicit endpoints (as ALB), else the issuer's discovery document.
                        let d = discovered.get(&o.issuer);
                        let endpoint =
                            |given: &Option<String>,
                             found: Option<&String>,
                             endpoint: &'static str| {
                                given.clone().or_else(|| found.cloned()).ok_or_else(|| {
                                    CompileError::NoEndpoint {
                                        listener: i,
                                        rule: id.clone(),
                                        endpoint,
                                    }
                                })
                            };
                        let provider = ProviderConfig {
                            issuer: o.issuer.clone(),
                            authorization_endpoint: endpoint(
                                &o.authorization_endpoint,
                                d.map(|d| &d.authorization_endpoint),
                                "authorization_endpoint",
                            )?,
                            token_endpoint: endpoint(
                                &o.token_endpoint,
                                d.map(|d| &d.token_endpoint),
                                "token_endpoint",
                            )?,
                            user_info_endpoint: endpoint(
                                &o.user_info_endpoint,
                                d.map(|d| &d.userinfo_endpoint),
                                "user_info_endpoint",
                            )?,
                            jwks_uri: d.and_then(|d| d.jwks_uri.clone()),
                            client_id: o.client_id.clone(),
                            client_secret: secret,
                            auth_method: o.token_endpoint_auth_method,
                            revocation_endpoint: o
                                .revocation_endpoint
                                .clone()
                                .or_else(|| d.and_then(|d| d.revocation_endpoint.clone())),
                            end_session: o
                                .end_session_endpoint
                                .clone()
                                .or_else(|| d.and_then(|d| d.end_session_endpoint.clone()))
                                .map(portcullis_auth::oidc::EndSession::Oidc),
                        };
                        auth = Some(Arc::new(AuthAction::new(
                            id.clone(),
                            Arc::new(Provider::new(provider, http.clone())),
                            o.session(),
                        )));
                    }
                    Action::JwtValidation(j) => {
                        jwt = Some(Arc::new(
                            portcullis_auth::jwt_validation::JwtValidator::new(j, http.clone()),
                        ));
                    }
                    Action::Forward(f) => {
                        let mut weighted = Vec::new();
                        for (name, weight) in f.groups() {
                            let tg = groups
                                .get(&name)
                                .ok_or_else(|| CompileError::UnknownTargetGroup(name.clone()))?;
                            weighted.push((tg.clone(), weight));
                        }
                        let sticky = f
                            .stickiness
                            .as_ref()
                            .filter(|s| s.enabled)
                            .map(|s| s.duration_seconds);
                        terminal = Some(Terminal::Forward(Arc::new(
                            crate::target_group::Forward::new(weighted, sticky),
                        )));
                    }
                    Action::FixedResponse(f) => {
                        terminal = Some(Terminal::Fixed {
                            status: f.status_code,
                            content_type: f
                                .content_type
                                .clone()
                                .unwrap_or_else(|| "text/plain".into()),
                            body: Bytes::from(f.message_body.clone().unwrap_or_default()),
                        });
                    }
                    Action::Redirect(r) => terminal = Some(Terminal::Redirect(r.clone())),
                }
            }
            let terminal = terminal.ok_or_else(|| CompileError::NoTerminal {
                listener: i,
                rule: id.clone(),
            })?;
            let conditions = conditions.iter().filter_map(Condition::compile).collect();
            Ok::<Rule, CompileError>(Rule {
                id,
                priority,
                conditions,
                auth,
                jwt,
                terminal,
            })
        };
        let mut rules = Vec::new();
        for r in &l.rules {
            rules.push(compile_rule(Some(r.priority), &r.conditions, &r.actions)?);
        }
        rules.sort_by_key(|r| r.priority);
        let index = crate::rules::RuleIndex::new(&rules, |r| r.conditions.as_slice());
        let default = compile_rule(None, &[], &l.default_actions)?;
        let has_auth = default.auth.is_some() || rules.iter().any(|r| r.auth.is_some());
        let logout_paths: Vec<(String, Arc<AuthAction>)> = rules
            .iter()
            .chain(std::iter::once(&default))
            .filter_map(|r| r.auth.as_ref())
            .filter_map(|a| a.session.logout_path.clone().map(|p| (p, a.clone())))
            .collect();
        let auth_actions: Vec<Arc<AuthAction>> = rules
            .iter()
            .chain(std::iter::once(&default))
            .filter_map(|r| r.auth.clone())
            .collect();
        if slot >= listeners.len() {
            listeners.resize_with(slot + 1, || None);
        }
        listeners[slot] = Some(Listener {
            protocol: l.protocol,
            port: bound_port,
            rules,
            index,
            default,
            has_auth,
            owned_cookies: owned_cookies.clone(),
            logout_paths,
            auth_actions,
            routing: crate::headers::Routing::of(&config.load_balancer),
        });
    }
    Ok(Snapshot {
        listeners,
        target_groups: groups,
    })
}
