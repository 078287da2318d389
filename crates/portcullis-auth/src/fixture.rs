//! The authenticate action the unit tests and the benchmark run against, written once. Hidden
//! from the documentation: it is not part of the API, only shared between `src` and `benches`.

use crate::authenticate::AuthAction;
use crate::oidc::{Provider, ProviderConfig};
use portcullis_config::{
    ApiRequests, ClientAuthMethod, IdentityHeader, OnUnauthenticated, SessionSettings,
};
use portcullis_verify::client::http_client;
use std::sync::Arc;

/// The example provider's issuer, which sessions for [`action`] are bound to.
pub const ISSUER: &str = "https://idp.example/pool";

/// The session cookie [`session_settings`] names, ALB's default.
pub const COOKIE: &str = "AWSELBAuthSessionCookie";

/// An ALB-like action's settings: PKCE and nonce, a week's session, `openid tasks/read`, the ALB
/// headers, and `on` for requests without a session.
pub fn session_settings(on: OnUnauthenticated) -> SessionSettings {
    SessionSettings {
        session_cookie_name: COOKIE.into(),
        scope: "openid tasks/read".into(),
        session_timeout: 604_800,
        authentication_request_extra_params: Default::default(),
        on_unauthenticated_request: on,
        use_pkce: true,
        use_nonce: true,
        unauthenticated_api_requests: ApiRequests::Redirect,
        identity_header: IdentityHeader::Alb,
        jwt_audience: None,
        logout_path: None,
        logout_redirect_uri: None,
        require_scopes: Vec::new(),
        require_groups: Vec::new(),
        require_claims: Default::default(),
    }
}

/// Rule `1/10`'s action with `session`, for client `client1` of the provider at [`ISSUER`]
/// (never called over the network unless a test serves it).
pub fn action(session: SessionSettings) -> AuthAction {
    let provider = ProviderConfig {
        issuer: ISSUER.into(),
        authorization_endpoint: "https://idp.example/oauth2/authorize".into(),
        token_endpoint: "https://idp.example/oauth2/token".into(),
        user_info_endpoint: "https://idp.example/oauth2/userInfo".into(),
        jwks_uri: None,
        client_id: "client1".into(),
        client_secret: "secret".into(),
        auth_method: ClientAuthMethod::ClientSecretBasic,
        revocation_endpoint: None,
        end_session: None,
    };
    AuthAction::new(
        "1/10".into(),
        Arc::new(Provider::new(provider, http_client())),
        session,
    )
}
