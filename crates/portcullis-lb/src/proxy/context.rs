//! The request context: what one request carries through the phases (its connection, listener,
//! head measurements, the cookies its answer sets) and the access-log entry it owns. The entry
//! is written by the logging phase; a context dropped with its entry still in hand (the client
//! left, so the request future was dropped) logs ALB's 460.

use crate::access_log::{self, Entry};
use crate::body::{Body, RequestBody};
use crate::connection::ConnInfo;
use crate::shared::Shared;
use crate::snapshot::Listener;
use crate::{headers, upstream};
use http::header::{CONTENT_LENGTH, HOST, SET_COOKIE, USER_AGENT};
use http::{HeaderValue, Request, Response, Version};
use std::time::Instant;

/// One request's state through the phases.
pub struct Ctx<'a> {
    /// What the request path shares.
    pub shared: &'a Shared,
    /// The client's connection.
    pub conn: &'a ConnInfo,
    /// The listener's compiled config.
    pub listener: &'a Listener,
    /// When the request arrived.
    pub started: Instant,
    /// The request's header bytes as received, and its largest header (ALB's limits).
    pub head_bytes: (usize, usize),
    /// A gRPC request (its errors are answered in gRPC's way).
    pub grpc: bool,
    /// `Set-Cookie` values the answer carries (session, stickiness).
    pub set_cookies: Vec<String>,
    /// The access-log and metrics record, when either is on.
    entry: Option<Entry>,
}

impl<'a> Ctx<'a> {
    /// A context for a request that just arrived.
    pub fn new(
        shared: &'a Shared,
        conn: &'a ConnInfo,
        listener: &'a Listener,
        req: &Request<RequestBody>,
    ) -> Ctx<'a> {
        let head_bytes = headers::header_bytes(req.headers());
        let grpc = upstream::is_grpc(req.version(), req.headers());
        let entry = (shared.access_log.enabled() || shared.metrics.is_some())
            .then(|| new_entry(shared, conn, req, head_bytes.0, grpc));
        Ctx {
            shared,
            conn,
            listener,
            started: Instant::now(),
            head_bytes,
            grpc,
            set_cookies: Vec::new(),
            entry,
        }
    }

    /// Notes something in the log entry (nothing is done when nothing is logged).
    pub fn log(&mut self, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.entry.as_mut() {
            f(e);
        }
    }

    /// Whether the request is being logged (so that costly notes are skipped otherwise).
    pub fn logging(&self) -> bool {
        self.entry.is_some()
    }

    /// Adds the cookies the phases collected to the answer.
    pub fn set_cookies_on(&mut self, response: &mut Response<Body>) {
        for c in self.set_cookies.drain(..) {
            if let Ok(v) = HeaderValue::from_str(&c) {
                response.headers_mut().append(SET_COOKIE, v);
            }
        }
    }

    /// The logging phase: the answer's status and size complete the entry, which goes to the
    /// metrics and the access log.
    pub fn finish(mut self, response: &Response<Body>) {
        if let Some(mut l) = self.entry.take() {
            l.elb_status_code = response.status().as_u16();
            l.sent_bytes = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(0);
            if l.target_processing_time >= 0.0 {
                l.response_processing_time = 0.0;
            }
            record(self.shared, l);
        }
    }
}

impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        if let Some(mut l) = self.entry.take() {
            l.elb_status_code = 460;
            record(self.shared, l);
        }
    }
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

/// Logs a request head the HTTP/1 parser refused (malformed or ambiguous framing, oversized
/// head) with the status it answered, as ALB logs malformed requests: the request field
/// `- - - `, no target.
pub fn log_refused(shared: &Shared, conn: &ConnInfo, status: u16) {
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

/// Logs a request that hyper's HTTP/2 server refused, with the status hyper answered.
pub fn log_refused_by_hyper(
    shared: &Shared,
    conn: &ConnInfo,
    error: &(dyn std::error::Error + 'static),
) {
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
    log_refused(shared, conn, status);
}

/// The request's log record. Without an access log (metrics only), the text fields that only
/// the log line needs are left empty, so that a request pays for no formatting it does not use.
fn new_entry(
    shared: &Shared,
    conn: &ConnInfo,
    req: &Request<RequestBody>,
    head_bytes: usize,
    grpc: bool,
) -> Entry {
    let header_bytes = head_bytes as u64;
    let body_bytes: u64 = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let tls = conn.tls.is_some();
    let kind = if grpc {
        "grpcs"
    } else if req.method() == http::Method::GET
        && headers::upgrade_protocol(req.headers(), req.version()).is_some()
    {
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
        request_creation_time: access_log::timestamp(time::OffsetDateTime::now_utc()),
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
