//! The authenticate action of one rule, resolved once when the rule is compiled.

use crate::oidc::Provider;
use portcullis_config::SessionSettings;
use std::sync::Arc;

/// One authenticate action of one rule, resolved.
pub struct AuthAction {
    /// Identifies the rule in `state` (`<listener port>/<priority>`).
    pub rule_id: String,
    /// The identity provider.
    pub provider: Arc<Provider>,
    /// Cookie name, scope, timeout, extra parameters, unauthenticated behaviour.
    pub session: SessionSettings,
    /// Issuer and client: a session sealed for another pair is ignored.
    binding: String,
    /// What cached forward headers depend on: the binding and how this rule presents the identity
    /// (rules sharing a session may ask for different headers).
    cache_key: Arc<str>,
}

impl AuthAction {
    /// Resolves an action once, when its rule is compiled, so the request path builds no keys.
    pub fn new(rule_id: String, provider: Arc<Provider>, session: SessionSettings) -> AuthAction {
        let binding = format!("{}|{}", provider.config.issuer, provider.config.client_id);
        let cache_key = Arc::from(format!(
            "{binding}|{:?}|{}",
            session.identity_header,
            session.jwt_audience.as_deref().unwrap_or("")
        ));
        AuthAction {
            rule_id,
            provider,
            session,
            binding,
            cache_key,
        }
    }

    /// Issuer and client, which a session must be sealed for.
    pub(super) fn binding(&self) -> &str {
        &self.binding
    }

    /// What the forward cache keys this action's headers by.
    pub(super) fn cache_key(&self) -> &Arc<str> {
        &self.cache_key
    }
}
