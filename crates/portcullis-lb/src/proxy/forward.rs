//! The `forward` action, as three phases: the upstream request (ALB's header edits, once), the
//! target (stickiness, algorithm, a second target when the first refuses the connection) and
//! the upstream response (limits, stickiness, upgrades, cookies the target may not set).

use super::Ctx;
use crate::body::Body;
use crate::body::{RequestBody, full};
use crate::error::{ErrorKind, ProxyError};
use crate::h1::client::UpstreamBody;
use crate::target_group::{Forward, Target, TargetGroup};
use crate::upgrade::TargetSide;
use crate::{headers, stickiness, upstream};
use bytes::Bytes;
use http::header::HOST;
use http::{HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use portcullis_auth::authenticate::ClaimHeaders;
use portcullis_config::{Protocol, ProtocolVersion};
use std::time::Instant;

/// What the upstream request phase learned that the later phases need.
struct Prepared {
    /// The WebSocket protocol asked for, if any.
    upgrade: Option<HeaderValue>,
    /// The client accepts trailers (gRPC to HTTP/2 targets).
    wants_trailers: bool,
    /// The request's host, for the pools' cookies.
    host: Option<String>,
}

/// Forwards to the rule's target group (or Lambda function).
pub(super) async fn forward(
    ctx: &mut Ctx<'_>,
    fwd: &Forward,
    mut parts: http::request::Parts,
    body: RequestBody,
    claims: ClaimHeaders,
) -> Result<Response<Body>, ProxyError> {
    let https = ctx.conn.tls.is_some();
    let (tg, group_cookies) = fwd.choose(&parts.headers, https, &ctx.shared.sticky_key);
    ctx.log(|l| {
        l.actions_executed.push("forward");
        l.target_group_arn = tg.arn.clone();
    });
    if !upstream::fits(tg.protocol_version, &parts) {
        return Err(ProxyError::downstream(ErrorKind::ProtocolMismatch));
    }
    ctx.set_cookies.extend(group_cookies);
    let prepared = upstream_request(ctx, &mut parts, claims);
    let mut answer = match &tg.lambda {
        Some(function) => {
            if prepared.upgrade.is_some() {
                return Err(ProxyError::downstream(ErrorKind::Lambda(
                    "LambdaWebsocketNotSupported",
                )));
            }
            let sent = Instant::now();
            let answer = Box::pin(function.invoke(&parts, body, &tg.arn)).await?;
            ctx.log(|l| {
                l.target_processing_time = sent.elapsed().as_secs_f64();
                l.target_status_code = Some(answer.status().as_u16());
            });
            answer.map(full)
        }
        None => Box::pin(to_target(ctx, tg, parts, body, &prepared)).await?,
    };
    // A target cannot plant the balancer's or a pool's credentials in the browser (session
    // fixation, login CSRF): those cookies are the balancer's to set.
    headers::strip_owned_set_cookies(
        answer.headers_mut(),
        &ctx.listener.owned_cookies,
        prepared.host.as_deref(),
    );
    Ok(answer)
}

/// ALB's edits of the request, made once: trace id, hop-by-hop headers out (a WebSocket upgrade
/// keeps its pair), owned cookies out, `X-Forwarded-*`, `Host`, TLS headers and the claims.
fn upstream_request(
    ctx: &mut Ctx<'_>,
    parts: &mut http::request::Parts,
    claims: ClaimHeaders,
) -> Prepared {
    let (conn, listener) = (ctx.conn, ctx.listener);
    // The host the rules routed by, read before anything is removed.
    let host = portcullis_core::request::host(parts).map(str::to_owned);
    // Only a GET may become a WebSocket (RFC 6455). Any other upgrade loses both headers
    // (hop-by-hop) and goes on as a plain request, so the connection stays HTTP and every later
    // request on it passes the rules and the authenticate action.
    let upgrade = (parts.method == http::Method::GET)
        .then(|| headers::upgrade_protocol(&parts.headers, parts.version))
        .flatten();
    let h = &mut parts.headers;
    let wants_trailers = headers::accepts_trailers(h);
    // Hop-by-hop headers out first (a client's `Connection` may name any header), then the
    // balancer's own.
    headers::strip_hop_by_hop(h);
    let trace = headers::set_trace_id(h, portcullis_core::now(), ctx.head_bytes.0);
    let span = tracing::Span::current();
    if !span.is_disabled() {
        span.record("trace_id", trace.as_str());
    }
    if let Some(p) = &upgrade {
        h.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
        h.insert(http::header::UPGRADE, p.clone());
    }
    let h = &mut parts.headers;
    headers::rewrite_cookies(h, &listener.owned_cookies, host.as_deref());
    let routing = listener.routing;
    headers::set_forwarded(h, conn, conn.tls.is_some(), conn.port, &routing);
    if !routing.preserve_host {
        headers::rewrite_host(h, conn.port);
    }
    if routing.drop_invalid_header_fields {
        headers::drop_invalid_header_fields(h);
    }
    if routing.tls_headers
        && let Some(t) = &conn.tls
    {
        for (name, value) in [
            ("x-amzn-tls-version", t.protocol),
            ("x-amzn-tls-cipher-suite", t.cipher.as_str()),
        ] {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        }
    }
    if !h.contains_key(HOST)
        && let Some(v) = host.as_deref().and_then(|v| HeaderValue::from_str(v).ok())
    {
        h.insert(HOST, v);
    }
    for (n, v) in claims.iter() {
        h.insert(n.clone(), v.clone());
    }
    let started = ctx.started;
    ctx.log(|l| {
        l.trace_id = trace;
        l.request_processing_time = started.elapsed().as_secs_f64();
    });
    Prepared {
        upgrade,
        wants_trailers,
        host,
    }
}

/// Picks the target (stickiness, algorithm), connects (a refused connection, which no byte of
/// the request has reached, is tried once on the next routable target, as nginx's
/// `proxy_next_upstream error`), sets the stickiness cookies for the target that took the
/// connection, addresses the request in the group's protocol, sends it, and reads the answer's
/// head.
async fn to_target(
    ctx: &mut Ctx<'_>,
    tg: &TargetGroup,
    mut parts: http::request::Parts,
    body: RequestBody,
    prepared: &Prepared,
) -> Result<Response<Body>, ProxyError> {
    let shared = ctx.shared;
    let mut choice = tg
        .pick_for(&parts.headers, &shared.sticky_key)
        .ok_or(ProxyError::internal(ErrorKind::NoTargets))?;
    let tls = tg.protocol == Protocol::HTTPS;
    let conn = match shared
        .upstream
        .connect(tg.protocol_version, &choice.target.destination(tls))
        .await
    {
        Ok(c) => c,
        Err(e) if e.kind == ErrorKind::ConnectFailed => {
            choice.target.outcomes.record(true);
            let Some(next) = tg.pick_other(choice) else {
                return Err(e);
            };
            if let Some(m) = &shared.metrics {
                m.target_retries.inc();
            }
            tracing::debug!(failed = %choice.target.authority, next = %next.target.authority, "connection refused; trying the next target");
            choice = next;
            shared
                .upstream
                .connect(tg.protocol_version, &choice.target.destination(tls))
                .await?
        }
        Err(e) => return Err(e),
    };
    // The stickiness cookies name the target that took the connection, not one that refused it.
    let target = choice.target;
    let sticky = tg.sticky_cookies(choice, ctx.conn.tls.is_some(), &shared.sticky_key);
    ctx.set_cookies.extend(sticky.now);
    address(tg, target, &mut parts, prepared.wants_trailers)?;
    if ctx.logging() {
        let authority = target.authority.clone();
        ctx.log(|l| l.target = authority);
    }
    let sent = ctx.logging().then(Instant::now);
    let in_flight = target.begin();
    let answer = Box::pin(shared.upstream.send(
        conn,
        &target.destination(tls),
        &target.cutoff,
        Request::from_parts(parts, upstream::ClientBody::new(body)),
        shared.idle_timeout,
    ))
    .await;
    drop(in_flight);
    // Only the target's own failures count against it (a client's broken body does not).
    target.outcomes.record(match &answer {
        Ok((r, _)) => r.status().is_server_error(),
        Err(e) => e.source == crate::error::Source::Upstream,
    });
    let (answer, target_side) = answer?;
    let status = answer.status().as_u16();
    ctx.log(|l| {
        l.target_processing_time = sent.map_or(0.0, |s| s.elapsed().as_secs_f64());
        l.target_status_code = Some(status);
    });
    upstream_response(
        ctx,
        target,
        sticky.if_app_sets,
        answer,
        target_side,
        prepared,
    )
}

/// HTTP/1.1 keeps `Host` and the origin-form path (the connection names the target); HTTP/2
/// moves `Host` into `:authority`, as an HTTP/1.1-to-HTTP/2 proxy must.
fn address(
    tg: &TargetGroup,
    target: &Target,
    parts: &mut http::request::Parts,
    wants_trailers: bool,
) -> Result<(), ProxyError> {
    if tg.protocol_version == ProtocolVersion::HTTP1 {
        parts.version = Version::HTTP_11;
        return Ok(());
    }
    let scheme = match tg.protocol {
        Protocol::HTTPS => "https",
        Protocol::HTTP => "http",
    };
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let host = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.parse::<http::uri::Authority>().is_ok());
    let authority = host.unwrap_or(&target.authority);
    parts.uri = format!("{scheme}://{authority}{pq}")
        .parse()
        .map_err(|_| ProxyError::downstream(ErrorKind::BadRequest))?;
    parts.headers.remove(HOST);
    if wants_trailers {
        parts
            .headers
            .insert(http::header::TE, HeaderValue::from_static("trailers"));
    }
    parts.version = Version::HTTP_2;
    Ok(())
}

/// The target's answer as the client gets it: ALB's 32 KB header limit, application-cookie
/// stickiness, the 101 of a WebSocket upgrade (joined by the client's connection loop), hop-by-hop
/// headers out, and a body that ends when the target's deregistration delay does.
fn upstream_response(
    ctx: &mut Ctx<'_>,
    target: &Target,
    app_sticky: Option<(String, Vec<String>)>,
    mut answer: Response<UpstreamBody>,
    target_side: Option<TargetSide>,
    prepared: &Prepared,
) -> Result<Response<Body>, ProxyError> {
    if headers::header_bytes(answer.headers()).0 > headers::MAX_RESPONSE_HEADERS {
        return Err(ProxyError::upstream(ErrorKind::ResponseHeadersTooLarge));
    }
    if let Some((app_cookie, cookies)) = app_sticky
        && stickiness::sets_cookie(answer.headers(), &app_cookie)
    {
        ctx.set_cookies.extend(cookies);
    }
    if answer.status() == StatusCode::SWITCHING_PROTOCOLS {
        let (Some(proto), Some(target_side)) = (prepared.upgrade.clone(), target_side) else {
            // A 101 nobody asked for is a broken target.
            return Err(ProxyError::upstream(ErrorKind::BadTargetResponse));
        };
        if !headers::switches_to(answer.headers(), &proto) {
            // A switch to another protocol than the client asked for is never tunnelled.
            return Err(ProxyError::upstream(ErrorKind::BadTargetResponse));
        }
        // The client's connection loop joins the two connections once it has sent the 101.
        answer.extensions_mut().insert(target_side);
        let (mut rparts, _) = answer.into_parts();
        headers::strip_hop_by_hop(&mut rparts.headers);
        rparts.headers.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
        rparts.headers.insert(http::header::UPGRADE, proto);
        return Ok(Response::from_parts(rparts, full(Bytes::new())));
    }
    let (mut rparts, rbody) = answer.into_parts();
    headers::strip_hop_by_hop(&mut rparts.headers);
    // A body already read whole needs no watch on the target's deregistration.
    let body = match rbody {
        UpstreamBody::Full(b) => full(b.unwrap_or_default()),
        rbody => upstream::CutBody::new(rbody, target.cutoff.clone()).boxed_unsync(),
    };
    Ok(Response::from_parts(rparts, body))
}
