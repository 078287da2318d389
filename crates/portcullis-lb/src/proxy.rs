//! The request path, as phases: downstream checks → strip client `x-amzn-oidc-*` → callback
//! interception → rule match → authenticate → terminal action (forward, redirect, fixed response)
//! → access log. Each phase returns early with a `ProxyError` whose kind sets the status.

use crate::access_log::{self, Entry};
use crate::error::{ErrorKind, ProxyError};
use crate::headers;
use crate::rules::RequestView;
use crate::snapshot::{Listener, Rule, Terminal};
use crate::{Body, ConnInfo, Shared, stickiness, upstream};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, LOCATION, SET_COOKIE, USER_AGENT};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use portcullis_auth::Outcome;
use portcullis_auth::authenticate::{CALLBACK_PATH, request_host};
use portcullis_config::{Protocol, ProtocolVersion};
use std::sync::Arc;
use std::time::Instant;

fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed_unsync()
}

fn from_bytes(r: Response<Bytes>) -> Response<Body> {
    r.map(full)
}

/// Requests one HTTP/2 connection serves before the balancer sends GOAWAY, as ALB.
pub const MAX_HTTP2_REQUESTS: u32 = 10_000;

/// Handles one request; never fails (errors become ALB's status pages).
pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let started = Instant::now();
    let created = time::OffsetDateTime::now_utc();
    let snapshot = shared.snapshot.load_full();
    let Some(listener) = snapshot
        .listeners
        .get(conn.listener)
        .and_then(Option::as_ref)
    else {
        // A listener a reload just removed; its connections are closing.
        return Ok(from_bytes(crate::error::page(503)));
    };
    // The access-log record also feeds the metrics. If the client goes away first, hyper drops
    // this future and the guard logs the request with ALB's 460.
    // The request head is measured once: for the log, ALB's limits and the trace id.
    let head = headers::header_bytes(req.headers());
    let grpc = upstream::is_grpc(req.version(), req.headers());
    let mut guard = Unanswered {
        shared: &shared,
        entry: (shared.access_log.enabled() || shared.metrics.is_some())
            .then(|| new_entry(&shared, &conn, &req, created, head.0, grpc)),
    };
    let log = &mut guard.entry;
    let req_version = req.version();
    let response = match phases(&shared, &conn, listener, req, head, log, started).await {
        Ok(r) => r,
        Err(e) => {
            if let Some(l) = log.as_mut()
                && let Some(reason) = e.reason()
            {
                l.error_reason = reason.into();
            }
            if e.source != crate::error::Source::Downstream {
                tracing::debug!(?e, "request failed");
            }
            let mut page = from_bytes(crate::error::page(e.status()));
            if grpc {
                // gRPC clients read the outcome from `grpc-status` (14: unavailable), as ALB
                // sends, in a headers-only answer.
                *page.body_mut() = full(Bytes::new());
                let h = page.headers_mut();
                h.remove(http::header::CONTENT_LENGTH);
                h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                h.insert("grpc-status", HeaderValue::from_static("14"));
                h.insert("grpc-message", HeaderValue::from_static("unavailable"));
            }
            page
        }
    };
    let mut response = response;
    if req_version == Version::HTTP_2 {
        let served = conn
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        if served == MAX_HTTP2_REQUESTS {
            // ALB ends an HTTP/2 connection after 10,000 requests (GOAWAY; open streams finish).
            conn.goaway.notify_one();
        }
    } else if Instant::now() >= conn.close_after {
        // `client_keep_alive` is over: this answer is the connection's last.
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(mut l) = guard.entry.take() {
        l.elb_status_code = response.status().as_u16();
        l.sent_bytes = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        if l.target_processing_time >= 0.0 {
            l.response_processing_time = 0.0;
        }
        record(&shared, l);
    }
    Ok(response)
}

/// Hands a finished request's record to the metrics and, stamped, to the access log.
fn record(shared: &Shared, mut l: Entry) {
    if let Some(m) = &shared.metrics {
        m.observe(&l);
    }
    if shared.access_log.enabled() {
        if l.time.is_empty() {
            l.time = access_log::timestamp(time::OffsetDateTime::now_utc());
        }
        shared.access_log.write(&l);
    }
}

/// Logs, when dropped still holding its entry, a request whose client left before the answer
/// (ALB's 460).
struct Unanswered<'a> {
    shared: &'a Shared,
    entry: Option<Entry>,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(mut l) = self.entry.take() {
            l.elb_status_code = 460;
            record(self.shared, l);
        }
    }
}

/// Logs a request that hyper's HTTP/1 parser refused before it reached `handle` (malformed or
/// ambiguous framing, oversized head), with the status hyper answered, as ALB logs malformed
/// requests: the request field `- - - `, no target.
pub fn log_refused(shared: &Shared, conn: &ConnInfo, error: &(dyn std::error::Error + 'static)) {
    let Some(e) = error.downcast_ref::<hyper::Error>() else {
        return;
    };
    let status = if e.is_parse_too_large() {
        if e.to_string().contains("URI") {
            414
        } else {
            431
        }
    } else if e.is_parse() {
        400
    } else {
        return;
    };
    if !shared.access_log.enabled() && shared.metrics.is_none() {
        return;
    }
    let stamp = access_log::timestamp(time::OffsetDateTime::now_utc());
    let entry = Entry {
        time: stamp.clone(),
        elb_status_code: status,
        request: "- - - ".into(),
        user_agent: "-".into(),
        request_creation_time: stamp,
        ..connection_entry(
            shared,
            conn,
            if conn.tls.is_some() { "https" } else { "http" },
        )
    };
    record(shared, entry);
}

/// The request's log record. Without an access log (metrics only), the text fields that only
/// the log line needs are left empty, so that a request pays for no formatting it does not use.
fn new_entry(
    shared: &Shared,
    conn: &ConnInfo,
    req: &Request<Incoming>,
    created: time::OffsetDateTime,
    head_bytes: usize,
    grpc: bool,
) -> Entry {
    let header_bytes = head_bytes as u64;
    let body_bytes: u64 = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let tls = conn.tls.is_some();
    let kind = if grpc {
        "grpcs"
    } else if headers::upgrade_protocol(req.headers(), req.version()).is_some() {
        if tls { "wss" } else { "ws" }
    } else {
        match (req.version(), tls) {
            (Version::HTTP_2, _) => "h2",
            (_, true) => "https",
            _ => "http",
        }
    };
    if !shared.access_log.enabled() {
        return Entry {
            received_bytes: header_bytes + body_bytes,
            ..Entry::blank(kind)
        };
    }
    let scheme = if conn.tls.is_some() { "https" } else { "http" };
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or(req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("-");
    let host = crate::rules::strip_port(host);
    let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let version = match req.version() {
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    Entry {
        received_bytes: header_bytes + body_bytes,
        request: format!(
            "{} {scheme}://{host}:{}{pq} {version}",
            req.method(),
            conn.port
        ),
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string(),
        request_creation_time: access_log::timestamp(created),
        ..connection_entry(shared, conn, kind)
    }
}

/// An entry with what the connection knows: the balancer, the client, TLS and the connection id.
fn connection_entry(shared: &Shared, conn: &ConnInfo, kind: &'static str) -> Entry {
    Entry {
        elb: shared.identity.elb(),
        client: conn.peer.to_string(),
        ssl_cipher: conn.tls.as_ref().map_or("-".into(), |t| t.cipher.clone()),
        ssl_protocol: conn
            .tls
            .as_ref()
            .map_or("-".into(), |t| t.protocol.to_string()),
        target_group_arn: "-".into(),
        domain_name: conn
            .tls
            .as_ref()
            .and_then(|t| t.sni.clone())
            .unwrap_or_else(|| "-".into()),
        matched_rule_priority: "-".into(),
        conn_trace_id: format!("TID_{:016x}", conn.id),
        ..Entry::blank(kind)
    }
}

async fn phases(
    shared: &Shared,
    conn: &ConnInfo,
    listener: &Listener,
    req: Request<Incoming>,
    (head_bytes, largest_header): (usize, usize),
    log: &mut Option<Entry>,
    started: Instant,
) -> Result<Response<Body>, ProxyError> {
    // Downstream checks.
    // TRACE as ALB; CONNECT because a 2xx to it would turn the connection into a tunnel that
    // no rule or authenticate action sees (the balancer is no forward proxy).
    if req.method() == Method::TRACE || req.method() == Method::CONNECT {
        return Err(ProxyError::downstream(ErrorKind::MethodNotAllowed));
    }
    let line = req.method().as_str().len()
        + req.uri().path_and_query().map_or(1, |p| p.as_str().len())
        + 11;
    if line > headers::MAX_REQUEST_LINE {
        return Err(ProxyError::downstream(ErrorKind::UriTooLong));
    }
    if largest_header > headers::MAX_HEADER || head_bytes > headers::MAX_HEADERS {
        return Err(ProxyError::downstream(ErrorKind::BadRequest));
    }
    if headers::xff_count(req.headers()) > headers::MAX_XFF_ADDRESSES {
        return Err(ProxyError::downstream(ErrorKind::TooManyForwardedFor));
    }
    // At most one `Host`, and a valid one (RFC 9112 §3.2): rules route by the host the target
    // will read.
    if !headers::host_is_sound(req.headers()) {
        return Err(ProxyError::downstream(ErrorKind::BadRequest));
    }

    let (mut parts, body) = req.into_parts();
    headers::strip_oidc_headers(&mut parts.headers);
    // Rules, the callback, logout paths and the target all see one normalised path.
    match crate::path::normalise(parts.uri.path()) {
        Ok(None) => {}
        Ok(Some(path)) => {
            let pq = match parts.uri.query() {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            let mut uri = std::mem::take(&mut parts.uri).into_parts();
            uri.path_and_query = Some(
                pq.parse()
                    .map_err(|_| ProxyError::downstream(ErrorKind::BadRequest))?,
            );
            parts.uri = http::Uri::from_parts(uri)
                .map_err(|_| ProxyError::downstream(ErrorKind::BadRequest))?;
        }
        Err(crate::path::Refused) => return Err(ProxyError::downstream(ErrorKind::BadRequest)),
    }

    // The login callback belongs to the load balancer, never to a target.
    if listener.has_auth && parts.uri.path() == CALLBACK_PATH {
        if let Some(l) = log.as_mut() {
            l.actions_executed.push("authenticate");
        }
        let outcome = Box::pin(shared.auth.callback(&parts, |id| listener.auth_by_rule(id))).await;
        return respond_outcome(outcome, log);
    }

    // A logout path belongs to the load balancer too.
    if let Some((_, action)) = listener
        .logout_paths
        .iter()
        .find(|(p, _)| p == parts.uri.path())
    {
        if let Some(l) = log.as_mut() {
            l.actions_executed.push("authenticate");
        }
        let outcome = Box::pin(shared.auth.logout(action, &parts)).await;
        return respond_outcome(outcome, log);
    }

    // Rule match.
    let view = RequestView::of(&parts, conn.peer.ip());
    let rule: &Rule =
        match listener
            .index
            .first_match(&listener.rules, |r| r.conditions.as_slice(), &view)
        {
            Some(i) => &listener.rules[i],
            None => &listener.default,
        };
    if let Some(l) = log.as_mut() {
        l.matched_rule_priority = rule.log_priority();
    }

    // Authenticate.
    let mut auth_headers = portcullis_auth::authenticate::ClaimHeaders::default();
    let mut set_cookies = Vec::new();
    if let Some(action) = &rule.auth {
        if let Some(l) = log.as_mut() {
            l.actions_executed.push("authenticate");
        }
        match Box::pin(shared.auth.authenticate(action, &parts)).await {
            Outcome::Forward {
                headers,
                set_cookies: c,
                error,
                ..
            } => {
                auth_headers = headers;
                set_cookies = c;
                if let (Some(l), Some(r)) = (log.as_mut(), error.and_then(|e| e.reason())) {
                    l.error_reason = r.into();
                }
            }
            other => return respond_outcome(other, log),
        }
    }

    // Bearer JWT (machine clients).
    if let Some(v) = &rule.jwt {
        if let Some(l) = log.as_mut() {
            l.actions_executed.push("jwt-validation");
        }
        if let Err(rej) = Box::pin(v.check(&parts.headers)).await {
            if let Some(l) = log.as_mut() {
                l.error_reason = rej.reason().into();
            }
            let mut b = Response::builder()
                .status(StatusCode::from_u16(rej.status()).unwrap_or(StatusCode::UNAUTHORIZED))
                .header(CONTENT_TYPE, "application/json")
                .header(http::header::SERVER, "awselb/2.0");
            if let Some(w) = rej.www_authenticate() {
                b = b.header(http::header::WWW_AUTHENTICATE, w);
            }
            return b
                .body(full(Bytes::from(rej.body())))
                .map_err(|_| ProxyError::internal(ErrorKind::Internal));
        }
    }

    // Terminal action.
    let mut resp = match &rule.terminal {
        Terminal::Fixed {
            status,
            content_type,
            body,
        } => {
            if let Some(l) = log.as_mut() {
                l.actions_executed.push("fixed-response");
            }
            Response::builder()
                .status(StatusCode::from_u16(*status).unwrap_or(StatusCode::OK))
                .header(CONTENT_TYPE, content_type.as_str())
                .header(http::header::SERVER, "awselb/2.0")
                .body(full(body.clone()))
                .map_err(|_| ProxyError::internal(ErrorKind::Internal))?
        }
        Terminal::Redirect(r) => {
            if let Some(l) = log.as_mut() {
                l.actions_executed.push("redirect");
            }
            let location = crate::redirect::location(r, &parts, conn.tls.is_some(), conn.port)?;
            if let Some(l) = log.as_mut() {
                l.redirect_url = location.clone();
            }
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
                .map_err(|_| ProxyError::internal(ErrorKind::Internal))?
        }
        Terminal::Forward(fwd) => {
            let https = conn.tls.is_some();
            let (tg, group_cookies) = fwd.choose(&parts.headers, https, &shared.sticky_key);
            if let Some(l) = log.as_mut() {
                l.actions_executed.push("forward");
                l.target_group_arn = tg.arn.clone();
            }
            if !upstream::fits(tg.protocol_version, &parts) {
                return Err(ProxyError::downstream(ErrorKind::ProtocolMismatch));
            }
            set_cookies.extend(group_cookies);
            let trace =
                headers::set_trace_id(&mut parts.headers, portcullis_auth::now(), head_bytes);
            // A WebSocket upgrade keeps its Upgrade/Connection pair; the client side's upgrade is
            // taken now so it is not sent upstream. Any other upgrade loses both (hop-by-hop) and
            // goes on as a plain request, so the connection stays HTTP and every later request
            // on it passes the rules and the authenticate action.
            let upgrade = headers::upgrade_protocol(&parts.headers, parts.version);
            let client_upgrade = upgrade
                .as_ref()
                .and_then(|_| parts.extensions.remove::<hyper::upgrade::OnUpgrade>());
            let wants_trailers = headers::accepts_trailers(&parts.headers);
            headers::strip_hop_by_hop(&mut parts.headers);
            if let Some(p) = &upgrade {
                parts.headers.insert(
                    http::header::CONNECTION,
                    HeaderValue::from_static("upgrade"),
                );
                parts.headers.insert(http::header::UPGRADE, p.clone());
            }
            let host = request_host(&parts).map(str::to_owned);
            headers::rewrite_cookies(&mut parts.headers, &listener.owned_cookies, host.as_deref());
            let routing = listener.routing;
            headers::set_forwarded(
                &mut parts.headers,
                conn.peer,
                conn.tls.is_some(),
                conn.port,
                &routing,
            );
            if !routing.preserve_host {
                headers::rewrite_host(&mut parts.headers, conn.port);
            }
            if routing.drop_invalid_header_fields {
                headers::drop_invalid_header_fields(&mut parts.headers);
            }
            if routing.tls_headers
                && let Some(t) = &conn.tls
            {
                for (name, value) in [
                    ("x-amzn-tls-version", t.protocol),
                    ("x-amzn-tls-cipher-suite", t.cipher.as_str()),
                ] {
                    if let Ok(v) = HeaderValue::from_str(value) {
                        parts.headers.insert(name, v);
                    }
                }
            }
            if !parts.headers.contains_key(HOST)
                && let Some(h) = request_host(&parts).and_then(|h| HeaderValue::from_str(h).ok())
            {
                parts.headers.insert(HOST, h);
            }
            for (n, v) in auth_headers.iter() {
                parts.headers.insert(n.clone(), v.clone());
            }
            if let Some(l) = log.as_mut() {
                l.trace_id = trace;
                l.request_processing_time = started.elapsed().as_secs_f64();
            }
            let mut answer = if let Some(function) = &tg.lambda {
                if upgrade.is_some() {
                    return Err(ProxyError::downstream(ErrorKind::Lambda(
                        "LambdaWebsocketNotSupported",
                    )));
                }
                let sent = Instant::now();
                let answer = Box::pin(function.invoke(&parts, body, &tg.arn)).await?;
                if let Some(l) = log.as_mut() {
                    l.target_processing_time = sent.elapsed().as_secs_f64();
                    l.target_status_code = Some(answer.status().as_u16());
                }
                from_bytes(answer)
            } else {
                to_target(
                    shared,
                    tg,
                    parts,
                    body,
                    https,
                    upgrade,
                    client_upgrade,
                    wants_trailers,
                    log,
                    &mut set_cookies,
                )
                .await?
            };
            // A target cannot plant the balancer's or a pool's credentials in the browser
            // (session fixation, login CSRF): those cookies are the balancer's to set.
            headers::strip_owned_set_cookies(
                answer.headers_mut(),
                &listener.owned_cookies,
                host.as_deref(),
            );
            answer
        }
    };
    for c in set_cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
    }
    Ok(resp)
}

/// The target half of `forward`: picks the target (stickiness, algorithm), addresses the request
/// to it in the group's protocol, sends it, and turns the answer into the client's response
/// (joining the two connections on a 101).
#[allow(clippy::too_many_arguments)]
async fn to_target(
    shared: &Shared,
    tg: &crate::target_group::TargetGroup,
    mut parts: http::request::Parts,
    body: Incoming,
    https: bool,
    upgrade: Option<HeaderValue>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    wants_trailers: bool,
    log: &mut Option<Entry>,
    set_cookies: &mut Vec<String>,
) -> Result<Response<Body>, ProxyError> {
    let (target, sticky) = tg
        .pick_for(&parts.headers, https, &shared.sticky_key)
        .ok_or(ProxyError::internal(ErrorKind::NoTargets))?;
    set_cookies.extend(sticky.now);
    let h2 = tg.protocol_version != ProtocolVersion::HTTP1;
    let scheme = match tg.protocol {
        Protocol::HTTPS => "https",
        Protocol::HTTP => "http",
    };
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    // HTTP/1.1 names the target in the URI (the pool connects to it) and keeps `Host`;
    // HTTP/2 moves `Host` into `:authority`, as an HTTP/1.1-to-HTTP/2 proxy must.
    let host = h2
        .then(|| parts.headers.get(HOST).and_then(|h| h.to_str().ok()))
        .flatten()
        .filter(|h| h.parse::<http::uri::Authority>().is_ok())
        .map(str::to_owned);
    let authority = host.as_deref().unwrap_or(&target.authority);
    parts.uri = format!("{scheme}://{authority}{pq}")
        .parse()
        .map_err(|_| ProxyError::downstream(ErrorKind::BadRequest))?;
    if h2 {
        parts.headers.remove(HOST);
        if wants_trailers {
            parts
                .headers
                .insert(http::header::TE, HeaderValue::from_static("trailers"));
        }
    }
    parts.version = if h2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    if let Some(l) = log.as_mut() {
        l.target = target.authority.clone();
    }
    let sent = Instant::now();
    let in_flight = target.begin();
    let upstream = shared
        .upstream
        .send(
            tg.protocol_version,
            tg.protocol == Protocol::HTTPS,
            &target.authority,
            Request::from_parts(parts, upstream::ClientBody::new(body)),
            shared.idle_timeout,
            &target.cutoff,
        )
        .await;
    drop(in_flight);
    target.outcomes.record(
        upstream
            .as_ref()
            .map_or(true, |r| r.status().is_server_error()),
    );
    let mut upstream = upstream?;
    if let Some(l) = log.as_mut() {
        l.target_processing_time = sent.elapsed().as_secs_f64();
        l.target_status_code = Some(upstream.status().as_u16());
    }
    if headers::header_bytes(upstream.headers()).0 > headers::MAX_RESPONSE_HEADERS {
        return Err(ProxyError::upstream(ErrorKind::ResponseHeadersTooLarge));
    }
    if let Some((app_cookie, cookies)) = sticky.if_app_sets
        && stickiness::sets_cookie(upstream.headers(), &app_cookie)
    {
        set_cookies.extend(cookies);
    }
    if upstream.status() == StatusCode::SWITCHING_PROTOCOLS {
        let (Some(proto), Some(client_io)) = (upgrade, client_upgrade) else {
            // A 101 nobody asked for is a broken target.
            return Err(ProxyError::upstream(ErrorKind::BadTargetResponse));
        };
        if !headers::switches_to(upstream.headers(), &proto) {
            // A switch to another protocol than the client asked for is never tunnelled.
            return Err(ProxyError::upstream(ErrorKind::BadTargetResponse));
        }
        let target_io = hyper::upgrade::on(&mut upstream);
        tokio::spawn(crate::upgrade::splice(client_io, target_io));
        let (mut rparts, _) = upstream.into_parts();
        headers::strip_hop_by_hop(&mut rparts.headers);
        rparts.headers.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
        rparts.headers.insert(http::header::UPGRADE, proto);
        Ok(Response::from_parts(rparts, full(Bytes::new())))
    } else {
        let (mut rparts, rbody) = upstream.into_parts();
        headers::strip_hop_by_hop(&mut rparts.headers);
        let body = upstream::CutBody::new(rbody, target.cutoff.clone());
        Ok(Response::from_parts(rparts, body.boxed_unsync()))
    }
}

fn respond_outcome(
    outcome: Outcome,
    log: &mut Option<Entry>,
) -> Result<Response<Body>, ProxyError> {
    let (response, error) = match outcome {
        Outcome::Respond { response, error } => (response, error),
        Outcome::Error {
            status,
            error,
            set_cookies,
        } => (crate::error::page_with_cookies(status, set_cookies), error),
        Outcome::Forward { .. } => return Err(ProxyError::internal(ErrorKind::Internal)),
    };
    if let (Some(l), Some(r)) = (log.as_mut(), error.and_then(|e| e.reason())) {
        l.error_reason = r.into();
    }
    if let Some(e) = error {
        tracing::debug!(
            reason = e.reason().unwrap_or("-"),
            status = e.status(),
            "authentication stopped the request"
        );
    }
    Ok(from_bytes(response))
}
