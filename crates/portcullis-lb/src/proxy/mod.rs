//! The request path, as named phases over one request context ([`Ctx`]), in the order they run:
//!
//! 1. `downstream_checks`: ALB's limits and refusals, before anything reads the request;
//! 2. `normalise`: owned headers stripped, one normalised path;
//! 3. `intercept`: the login callback and logout paths, which belong to the balancer;
//! 4. `route`: the first matching rule, or the default;
//! 5. `authorize`: `authenticate-*` and JWT validation;
//! 6. `terminal`: fixed response, redirect, or forward (`forward`: upstream request, target,
//!    upstream response);
//! 7. logging ([`Ctx::finish`]), which the context owns.
//!
//! A phase returns `Ok(Step::Next(..))` to go on, `Ok(Step::Answer(..))` to answer now, or a
//! `ProxyError` whose source and kind set the status page.

mod context;
mod forward;

pub use context::{Ctx, log_refused, log_refused_by_hyper};

use crate::body::{Body, RequestBody, full};
use crate::connection::ConnInfo;
use crate::error::page as error_page;
use crate::error::{ErrorKind, ProxyError};
use crate::headers;
use crate::rules::RequestView;
use crate::shared::Shared;
use crate::snapshot::{Rule, Terminal};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use portcullis_auth::Outcome;
use portcullis_auth::authenticate::{CALLBACK_PATH, ClaimHeaders};
use portcullis_auth::backchannel::{BACKCHANNEL_LOGOUT_PATH, MAX_LOGOUT_BODY};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

fn from_bytes(r: Response<Bytes>) -> Response<Body> {
    r.map(full)
}

/// Requests one HTTP/2 connection serves before the balancer sends GOAWAY, as ALB.
pub const MAX_HTTP2_REQUESTS: u32 = 10_000;

/// What a phase decided: go on with a value, or answer now.
enum Step<T> {
    Next(T),
    Answer(Response<Body>),
}

/// Goes on with a phase's value, or returns its answer.
macro_rules! next {
    ($e:expr) => {
        match $e? {
            Step::Next(v) => v,
            Step::Answer(r) => return Ok(r),
        }
    };
}

/// Handles one request; never fails (errors become ALB's status pages).
pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let snapshot = shared.snapshot.load_full();
    let Some(listener) = snapshot
        .listeners
        .get(conn.listener)
        .and_then(Option::as_ref)
    else {
        // A listener a reload just removed; its connections are closing.
        return Ok(from_bytes(error_page(503)));
    };
    let version = req.version();
    let span = request_span(&req);
    let mut ctx = Ctx::new(&shared, &conn, listener, &req);
    // Each phase's future is boxed where it is awaited (here, `terminal`, `forward`, `to_target`,
    // the upstream send): unboxed, each level's future was built, then copied whole into its
    // parent's: about 29 KB of `memmove` per request, 9 KB boxed (bench/README.md, "Batched
    // writes, boxed futures").
    let mut response = match Box::pin(phases(&mut ctx, req).instrument(span.clone())).await {
        Ok(r) => r,
        Err(e) => {
            let _in_request = span.enter();
            // A malformed or oversized request ends its HTTP/1 connection, as at ALB and nginx:
            // what the client sends next cannot be trusted to start a request.
            let close = version != Version::HTTP_2
                && e.source == crate::error::Source::Downstream
                && matches!(e.status(), 400 | 414);
            let mut page = error_response(&mut ctx, e);
            if close {
                page.headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            page
        }
    };
    connection_limits(&conn, version, &mut response);
    ctx.finish(&response);
    Ok(response)
}

/// The span every log line of one request belongs to; `trace_id` is filled in when the request is
/// forwarded. A `debug` span, built only when a subscriber wants it: at `info` (the default) it
/// would cost about 4 µs of CPU a request, 15 % of forwarding throughput (bench/README.md).
fn request_span(req: &Request<RequestBody>) -> tracing::Span {
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug_span!(
            "request",
            method = %req.method(),
            path = %req.uri().path(),
            trace_id = tracing::field::Empty,
        )
    } else {
        tracing::Span::none()
    }
}

/// The phases in order.
async fn phases(
    ctx: &mut Ctx<'_>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, ProxyError> {
    downstream_checks(ctx, &req)?;
    let (mut parts, body) = req.into_parts();
    normalise(&mut parts)?;
    let body = next!(intercept(ctx, &parts, body).await);
    let rule = route(ctx, &parts);
    let claims = next!(authorize(ctx, rule, &parts).await);
    let mut response = Box::pin(terminal(ctx, rule, parts, body, claims)).await?;
    ctx.set_cookies_on(&mut response);
    Ok(response)
}

/// ALB's refusals before anything reads the request: TRACE and CONNECT, the request line, header
/// sizes, `X-Forwarded-For` length, and an ambiguous `Host`.
fn downstream_checks(ctx: &Ctx<'_>, req: &Request<RequestBody>) -> Result<(), ProxyError> {
    let refuse = |kind| Err(ProxyError::downstream(kind));
    // TRACE as ALB; CONNECT because a 2xx to it would turn the connection into a tunnel that
    // no rule or authenticate action sees (the balancer is no forward proxy).
    if req.method() == Method::TRACE || req.method() == Method::CONNECT {
        return refuse(ErrorKind::MethodNotAllowed);
    }
    let line = req.method().as_str().len()
        + req.uri().path_and_query().map_or(1, |p| p.as_str().len())
        + 11;
    if line > headers::MAX_REQUEST_LINE {
        return refuse(ErrorKind::UriTooLong);
    }
    let (head_bytes, largest_header) = ctx.head_bytes;
    if largest_header > headers::MAX_HEADER || head_bytes > headers::MAX_HEADERS {
        return refuse(ErrorKind::BadRequest);
    }
    if headers::xff_count(req.headers()) > headers::MAX_XFF_ADDRESSES {
        return refuse(ErrorKind::TooManyForwardedFor);
    }
    // At most one `Host`, and a valid one (RFC 9112 §3.2): rules route by the host the target
    // will read.
    if !headers::host_is_sound(req.headers()) {
        return refuse(ErrorKind::BadRequest);
    }
    Ok(())
}

/// Headers a client may not send are removed, and the path is normalised once: rules, the
/// callback, logout paths and the target all see the same one.
fn normalise(parts: &mut http::request::Parts) -> Result<(), ProxyError> {
    headers::strip_oidc_headers(&mut parts.headers);
    let bad = || ProxyError::downstream(ErrorKind::BadRequest);
    match crate::path::normalise(parts.uri.path()) {
        Ok(None) => Ok(()),
        Ok(Some(path)) => {
            let pq = match parts.uri.query() {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            let mut uri = std::mem::take(&mut parts.uri).into_parts();
            uri.path_and_query = Some(pq.parse().map_err(|_| bad())?);
            parts.uri = http::Uri::from_parts(uri).map_err(|_| bad())?;
            Ok(())
        }
        Err(crate::path::Refused) => Err(bad()),
    }
}

/// How long a back-channel logout request may take to send its body.
const LOGOUT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The login callback, the back-channel logout path and the logout paths belong to the balancer,
/// never to a target.
async fn intercept(
    ctx: &mut Ctx<'_>,
    parts: &http::request::Parts,
    body: RequestBody,
) -> Result<Step<RequestBody>, ProxyError> {
    let (shared, listener) = (ctx.shared, ctx.listener);
    let outcome = if listener.has_auth && parts.uri.path() == CALLBACK_PATH {
        ctx.log(|l| l.actions_executed.push("authenticate"));
        Box::pin(shared.auth.callback(parts, |id| listener.auth_by_rule(id))).await
    } else if let Some((_, action)) = listener
        .logout_paths
        .iter()
        .find(|(p, _)| p == parts.uri.path())
    {
        ctx.log(|l| l.actions_executed.push("authenticate"));
        Box::pin(shared.auth.logout(action, parts)).await
    } else if listener.has_auth && parts.uri.path() == BACKCHANNEL_LOGOUT_PATH {
        ctx.log(|l| l.actions_executed.push("authenticate"));
        // At most 16 KiB, within 10 s; anything else is refused as unreadable.
        let read = crate::upstream::collect_limited(body, MAX_LOGOUT_BODY);
        let bytes = match tokio::time::timeout(LOGOUT_BODY_TIMEOUT, read).await {
            Ok(Ok((bytes, _))) => Some(bytes),
            _ => None,
        };
        let actions = &listener.auth_actions;
        Box::pin(
            shared
                .auth
                .backchannel_logout(actions, parts, bytes.as_deref()),
        )
        .await
    } else {
        return Ok(Step::Next(body));
    };
    respond_outcome(ctx, outcome).map(Step::Answer)
}

/// The first rule whose conditions match, or the listener's default.
fn route<'a>(ctx: &mut Ctx<'a>, parts: &http::request::Parts) -> &'a Rule {
    let listener = ctx.listener;
    let view = RequestView::of(parts, ctx.conn.peer.ip());
    let rule = match listener
        .index
        .first_match(&listener.rules, |r| r.conditions.as_slice(), &view)
    {
        Some(i) => &listener.rules[i],
        None => &listener.default,
    };
    ctx.log(|l| l.matched_rule_priority = rule.log_priority());
    rule
}

/// The rule's `authenticate-*` action (the claim headers for the target, or an answer: a login
/// redirect, 401, 403) and its JWT validation.
async fn authorize(
    ctx: &mut Ctx<'_>,
    rule: &Rule,
    parts: &http::request::Parts,
) -> Result<Step<ClaimHeaders>, ProxyError> {
    let mut claims = ClaimHeaders::default();
    if let Some(action) = &rule.auth {
        ctx.log(|l| l.actions_executed.push("authenticate"));
        match Box::pin(ctx.shared.auth.authenticate(action, parts)).await {
            Outcome::Forward {
                headers,
                set_cookies,
                error,
                ..
            } => {
                claims = headers;
                ctx.set_cookies.extend(set_cookies);
                if let Some(r) = error.and_then(|e| e.reason()) {
                    ctx.log(|l| l.error_reason = r.into());
                }
            }
            other => return respond_outcome(ctx, other).map(Step::Answer),
        }
    }
    // Bearer JWT (machine clients).
    if let Some(v) = &rule.jwt {
        ctx.log(|l| l.actions_executed.push("jwt-validation"));
        if let Err(rej) = Box::pin(v.check(&parts.headers)).await {
            ctx.log(|l| l.error_reason = rej.reason().into());
            let mut b = Response::builder()
                .status(StatusCode::from_u16(rej.status()).unwrap_or(StatusCode::UNAUTHORIZED))
                .header(CONTENT_TYPE, "application/json")
                .header(http::header::SERVER, "awselb/2.0");
            if let Some(w) = rej.www_authenticate() {
                b = b.header(http::header::WWW_AUTHENTICATE, w);
            }
            return b
                .body(full(Bytes::from(rej.body())))
                .map(Step::Answer)
                .map_err(|_| ProxyError::internal(ErrorKind::Internal));
        }
    }
    Ok(Step::Next(claims))
}

/// The rule's terminal action: a fixed response, a redirect, or a forward.
async fn terminal(
    ctx: &mut Ctx<'_>,
    rule: &Rule,
    parts: http::request::Parts,
    body: RequestBody,
    claims: ClaimHeaders,
) -> Result<Response<Body>, ProxyError> {
    let internal = |_| ProxyError::internal(ErrorKind::Internal);
    match &rule.terminal {
        Terminal::Fixed {
            status,
            content_type,
            body,
        } => {
            ctx.log(|l| l.actions_executed.push("fixed-response"));
            Response::builder()
                .status(StatusCode::from_u16(*status).unwrap_or(StatusCode::OK))
                .header(CONTENT_TYPE, content_type.as_str())
                .header(http::header::SERVER, "awselb/2.0")
                .body(full(body.clone()))
                .map_err(internal)
        }
        Terminal::Redirect(r) => {
            ctx.log(|l| l.actions_executed.push("redirect"));
            let location =
                crate::redirect::location(r, &parts, ctx.conn.tls.is_some(), ctx.conn.port)?;
            ctx.log(|l| l.redirect_url = location.clone());
            let status = if r.status_code == "HTTP_301" {
                StatusCode::MOVED_PERMANENTLY
            } else {
                StatusCode::FOUND
            };
            Response::builder()
                .status(status)
                .header(LOCATION, location)
                .header(http::header::SERVER, "awselb/2.0")
                .body(full(Bytes::new()))
                .map_err(internal)
        }
        Terminal::Forward(fwd) => Box::pin(forward::forward(ctx, fwd, parts, body, claims)).await,
    }
}

/// An `authenticate-*` outcome that answers the client itself.
fn respond_outcome(ctx: &mut Ctx<'_>, outcome: Outcome) -> Result<Response<Body>, ProxyError> {
    let (response, error) = match outcome {
        Outcome::Respond { response, error } => (response, error),
        Outcome::Error {
            status,
            error,
            set_cookies,
        } => (crate::error::page_with_cookies(status, set_cookies), error),
        Outcome::Forward { .. } => return Err(ProxyError::internal(ErrorKind::Internal)),
    };
    if let Some(e) = error {
        if let Some(r) = e.reason() {
            ctx.log(|l| l.error_reason = r.into());
        }
        tracing::debug!(
            reason = e.reason().unwrap_or("-"),
            status = e.status(),
            "authentication stopped the request"
        );
    }
    Ok(from_bytes(response))
}

/// ALB's page for an error (for gRPC, a headers-only answer with `grpc-status` 14).
fn error_response(ctx: &mut Ctx<'_>, e: ProxyError) -> Response<Body> {
    if let Some(reason) = e.reason() {
        ctx.log(|l| l.error_reason = reason.into());
    }
    if e.source != crate::error::Source::Downstream {
        tracing::debug!(?e, "request failed");
    }
    let mut page = from_bytes(error_page(e.status()));
    if ctx.grpc {
        // gRPC clients read the outcome from `grpc-status` (14: unavailable), as ALB sends.
        *page.body_mut() = full(Bytes::new());
        let h = page.headers_mut();
        h.remove(http::header::CONTENT_LENGTH);
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h.insert("grpc-status", HeaderValue::from_static("14"));
        h.insert("grpc-message", HeaderValue::from_static("unavailable"));
    }
    page
}

/// ALB's connection limits: an HTTP/2 connection ends after 10,000 requests (GOAWAY; open
/// streams finish); an HTTP/1 answer after `client_keep_alive` is the connection's last.
fn connection_limits(conn: &ConnInfo, version: Version, response: &mut Response<Body>) {
    if version == Version::HTTP_2 {
        let served = conn
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        if served == MAX_HTTP2_REQUESTS {
            conn.goaway.notify_one();
        }
    } else if Instant::now() >= conn.close_after {
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
}
