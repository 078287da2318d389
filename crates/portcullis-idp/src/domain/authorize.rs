//! Checking an authorization request (`/oauth2/authorize`, `/login`) and a `/logout` request
//! against the pool's clients: what may continue, what is refused and how.

use crate::domain::catalog::StoredClient;
use crate::domain::pool::Pool;
use crate::domain::scopes::gives_id_token;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Longest accepted parameter value.
pub const MAX_PARAM_LEN: usize = 2048;

/// Why `/oauth2/authorize` or `/login` cannot continue.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthorizeProblem {
    /// Client or redirect URI is not trustworthy: show an error page, never redirect.
    Page(&'static str, String),
    /// Tell the client through its redirect URI.
    Redirect {
        /// Where to send the error.
        redirect_uri: String,
        /// `error` parameter.
        error: &'static str,
        /// Echoed `state`.
        state: Option<String>,
    },
}

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The client.
    pub client_id: String,
    /// Registered redirect URI.
    pub redirect_uri: String,
    /// Echoed back.
    pub state: Option<String>,
    /// Granted scopes (requested ∩ allowed; all allowed when none requested).
    pub scopes: Vec<String>,
    /// Copied into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// `response_type=token`: tokens in the fragment instead of a code.
    pub implicit: bool,
    /// The external provider `identity_provider=` or `idp_identifier=` chose (federation).
    pub federate: Option<String>,
}

/// Where `/logout` sends the browser.
#[derive(Debug, PartialEq, Eq)]
pub enum LogoutTarget {
    /// A registered `logout_uri`.
    Uri(String),
    /// Sign in again: `/login` with these authorization parameters.
    Login(String),
}

impl Pool {
    /// Checks an authorization request (`/oauth2/authorize` and `/login` share it). Until the
    /// client and its redirect URI are known to be trustworthy a problem is a page; after, it goes
    /// back through the redirect URI.
    pub fn check_authorize(
        &self,
        q: &[(String, String)],
    ) -> Result<AuthorizeRequest, AuthorizeProblem> {
        check_parameters(q)?;
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let (client_id, client) = self.authorizing_client(get("client_id"))?;
        let redirect_uri = registered_redirect(&client, get("redirect_uri"))?;
        let state = get("state");
        let redirect = |error| AuthorizeProblem::Redirect {
            redirect_uri: redirect_uri.clone(),
            error,
            state: state.clone(),
        };
        let implicit = response_type(&client, get("response_type").as_deref()).map_err(redirect)?;
        // `identity_provider=` / `idp_identifier=`: only a provider the client supports.
        let Ok(federate) = self.federated_provider(
            &client.client,
            get("identity_provider").as_deref(),
            get("idp_identifier").as_deref(),
        ) else {
            return Err(redirect("invalid_request"));
        };
        let code_challenge = code_challenge(
            get("code_challenge_method").as_deref(),
            get("code_challenge"),
        )
        .map_err(redirect)?;
        let scopes = granted_scopes(&client, get("scope"));
        if scopes.is_empty() {
            return Err(redirect("invalid_scope"));
        }
        let nonce = get("nonce").filter(|n| !n.is_empty());
        // An ID token handed over in the fragment is only bound to the client's login by its
        // nonce; without one, an ID token from another response can be injected (OIDC Core
        // §3.2.2.1: nonce is required in the implicit flow).
        if implicit && nonce.is_none() && gives_id_token(&scopes.join(" ")) {
            return Err(redirect("invalid_request"));
        }
        Ok(AuthorizeRequest {
            client_id,
            redirect_uri,
            state,
            scopes,
            nonce,
            code_challenge,
            implicit,
            federate,
        })
    }

    /// The client named by `client_id`: registered, and enabled for the OAuth flows.
    fn authorizing_client(
        &self,
        client_id: Option<String>,
    ) -> Result<(String, Arc<StoredClient>), AuthorizeProblem> {
        let (client_id, client) = self.registered_client(client_id)?;
        if !client.client.oauth_enabled() {
            return Err(AuthorizeProblem::Page(
                "unauthorized_client",
                "this app is not enabled for the hosted UI and OAuth flows".into(),
            ));
        }
        Ok((client_id, client))
    }

    /// The client named by `client_id`: given, and registered with the pool.
    fn registered_client(
        &self,
        client_id: Option<String>,
    ) -> Result<(String, Arc<StoredClient>), AuthorizeProblem> {
        let Some(client_id) = client_id else {
            return Err(AuthorizeProblem::Page(
                "invalid_request",
                "client_id is missing".into(),
            ));
        };
        let Some(client) = self.client(&client_id) else {
            return Err(AuthorizeProblem::Page(
                "invalid_client",
                "this app is not registered with the user pool".into(),
            ));
        };
        Ok((client_id, client))
    }

    /// Checks a `/logout` request: `client_id` with a registered `logout_uri`, or `client_id` with
    /// the authorization parameters of a new sign-in.
    pub fn check_logout(
        &self,
        q: &[(String, String)],
        raw_query: &str,
    ) -> Result<LogoutTarget, AuthorizeProblem> {
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let (_, client) = self.registered_client(get("client_id"))?;
        if let Some(uri) = get("logout_uri") {
            return if client.client.logout_urls.iter().any(|u| u == &uri) {
                Ok(LogoutTarget::Uri(uri))
            } else {
                Err(AuthorizeProblem::Page(
                    "invalid_request",
                    "logout_uri is not one of the app's sign-out URLs".into(),
                ))
            };
        }
        if get("redirect_uri").is_some() {
            self.check_authorize(q)?;
            return Ok(LogoutTarget::Login(raw_query.to_string()));
        }
        Err(AuthorizeProblem::Page(
            "invalid_request",
            "give logout_uri, or redirect_uri and response_type".into(),
        ))
    }
}

/// Refuses repeated and over-long parameters (before anything is trusted: a page).
fn check_parameters(q: &[(String, String)]) -> Result<(), AuthorizeProblem> {
    let mut seen = BTreeSet::new();
    for (k, v) in q {
        if !seen.insert(k.as_str()) {
            return Err(AuthorizeProblem::Page(
                "invalid_request",
                format!("parameter `{k}` is repeated"),
            ));
        }
        if v.len() > MAX_PARAM_LEN {
            return Err(AuthorizeProblem::Page(
                "invalid_request",
                format!("parameter `{k}` is too long"),
            ));
        }
    }
    Ok(())
}

/// The `redirect_uri`, when it is one of the client's callback URLs.
fn registered_redirect(
    client: &StoredClient,
    redirect_uri: Option<String>,
) -> Result<String, AuthorizeProblem> {
    let Some(redirect_uri) = redirect_uri else {
        return Err(AuthorizeProblem::Page(
            "invalid_request",
            "redirect_uri is missing".into(),
        ));
    };
    if !client
        .client
        .callback_urls
        .iter()
        .any(|u| u == &redirect_uri)
    {
        return Err(AuthorizeProblem::Page(
            "redirect_mismatch",
            "redirect_uri is not one of the app's callback URLs".into(),
        ));
    }
    Ok(redirect_uri)
}

/// Whether the `response_type` asks for the implicit flow (`token`) rather than a code, when the
/// client may use it; else the `error` to send back.
fn response_type(client: &StoredClient, response_type: Option<&str>) -> Result<bool, &'static str> {
    let allows = |flow: &str| client.client.allowed_oauth_flows.iter().any(|f| f == flow);
    match response_type {
        None => Err("invalid_request"),
        Some("code") if allows("code") => Ok(false),
        Some("token") if allows("implicit") => Ok(true),
        Some("code") | Some("token") => Err("unauthorized_client"),
        Some(_) => Err("unsupported_response_type"),
    }
}

/// The PKCE challenge: none, or S256 with a challenge of 43 to 128 characters.
fn code_challenge(
    method: Option<&str>,
    challenge: Option<String>,
) -> Result<Option<String>, &'static str> {
    match (method, challenge) {
        (None, None) => Ok(None),
        (Some("S256"), Some(c)) if (43..=128).contains(&c.len()) => Ok(Some(c)),
        _ => Err("invalid_request"),
    }
}

/// The requested scopes the client may have, in request order without repeats (all the client's
/// when none are requested).
fn granted_scopes(client: &StoredClient, scope: Option<String>) -> Vec<String> {
    let allowed = &client.client.allowed_oauth_scopes;
    match scope {
        Some(s) => {
            let mut v: Vec<String> = Vec::new();
            for sc in s.split(' ').filter(|x| !x.is_empty()) {
                if allowed.iter().any(|a| a == sc) && !v.iter().any(|x| x == sc) {
                    v.push(sc.to_string());
                }
            }
            v
        }
        None => allowed.clone(),
    }
}
