//! The headers ALB adds, removes and rewrites on the way to a target.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use http::{HeaderMap, HeaderName, HeaderValue};

/// ALB refuses more addresses than this in `X-Forwarded-For` (463).
pub const MAX_XFF_ADDRESSES: usize = 30;
/// ALB's limit on the request line (method, target, version).
pub const MAX_REQUEST_LINE: usize = 16 * 1024;
/// ALB's limit on one request header (name and value).
pub const MAX_HEADER: usize = 16 * 1024;
/// ALB's limit on all request headers together.
pub const MAX_HEADERS: usize = 64 * 1024;
/// ALB's limit on a target's response headers together.
pub const MAX_RESPONSE_HEADERS: usize = 32 * 1024;

/// The bytes headers take on the wire (`name: value\r\n` each), and the largest one.
pub fn header_bytes(h: &HeaderMap) -> (usize, usize) {
    h.iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .fold((0, 0), |(total, max), n| (total + n, max.max(n)))
}
/// `x-amzn-trace-id`.
pub const TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");
const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
const XFP: HeaderName = HeaderName::from_static("x-forwarded-proto");
const XFPORT: HeaderName = HeaderName::from_static("x-forwarded-port");

/// Whether `n` is a hop-by-hop header (RFC 9110 §7.6.1, plus `keep-alive` and
/// `proxy-connection`).
fn is_hop_by_hop(n: &HeaderName) -> bool {
    use http::header::{CONNECTION, PROXY_AUTHENTICATE, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
    n == CONNECTION
        || n == TRANSFER_ENCODING
        || n == TE
        || n == TRAILER
        || n == UPGRADE
        || n == PROXY_AUTHENTICATE
        || n.as_str() == "keep-alive"
        || n.as_str() == "proxy-connection"
}

/// Removes hop-by-hop headers, including those named in `Connection`. Only the ones present are
/// removed, and nothing is allocated unless `Connection` names another header.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    if !h.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = h
        .get_all(http::header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| {
            !t.is_empty()
                && !t.eq_ignore_ascii_case(b"close")
                && !t.eq_ignore_ascii_case(b"keep-alive")
                && !t.eq_ignore_ascii_case(b"upgrade")
        })
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        // `Host` says where the request goes; it is never hop-by-hop.
        .filter(|n| n != http::header::HOST)
        .collect();
    for n in named {
        h.remove(n);
    }
    while let Some(n) = h.keys().find(|n| is_hop_by_hop(n)).cloned() {
        h.remove(n);
    }
}

/// Whether the client accepts trailers (`TE: trailers`), which gRPC needs passed to HTTP/2 targets.
pub fn accepts_trailers(h: &HeaderMap) -> bool {
    h.get_all(http::header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
}

/// The only protocol the balancer tunnels (RFC 6455). Any other `Upgrade` (`h2c`, `TLS/1.x`,
/// anything) is dropped and the request forwarded as a plain one, so that no bytes after it can
/// reach a target without passing the rules and the authenticate action.
pub const WEBSOCKET: &str = "websocket";

/// Whether a header's comma-separated tokens include `token` (case-insensitive).
pub fn has_token(h: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    h.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// The WebSocket upgrade an HTTP/1.1 request asks for (`Connection: upgrade` with
/// `Upgrade: websocket`), as the value to send on; `None` for anything else, which is then
/// forwarded without its upgrade.
pub fn upgrade_protocol(h: &HeaderMap, version: http::Version) -> Option<http::HeaderValue> {
    if version != http::Version::HTTP_11 || !has_token(h, &http::header::CONNECTION, "upgrade") {
        return None;
    }
    let mut values = h.get_all(http::header::UPGRADE).iter();
    let v = values.next()?;
    let only = values.next().is_none();
    (only
        && v.to_str()
            .is_ok_and(|p| p.trim().eq_ignore_ascii_case(WEBSOCKET)))
    .then(|| v.clone())
}

/// Whether a target's 101 switches to the protocol the client asked for (`Upgrade` names it
/// alone and `Connection` carries `upgrade`): any other 101 is not tunnelled.
pub fn switches_to(h: &HeaderMap, asked: &HeaderValue) -> bool {
    let mut values = h.get_all(http::header::UPGRADE).iter();
    let same = values.next().is_some_and(|v| {
        v.to_str().ok().map(str::trim).is_some_and(|p| {
            asked
                .to_str()
                .is_ok_and(|a| p.eq_ignore_ascii_case(a.trim()))
        })
    });
    same && values.next().is_none() && has_token(h, &http::header::CONNECTION, "upgrade")
}

/// Name prefixes the balancer owns: a client's header under one of them never reaches a target.
const OWNED_PREFIXES: [&str; 4] = [
    "x-amzn-oidc-",
    "x-portcullis-",
    "x-amzn-tls-",
    "x-amzn-mtls-",
];
/// Headers the balancer sets itself and targets trust: a client's spelling of one with `_`
/// (which CGI, WSGI, PHP and others read as the same header) never reaches a target.
const OWNED_EXACT: [&str; 4] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-amzn-trace-id",
];

/// Whether `name`, normalised (lower case, `_` read as `-`), starts with `prefix` (lower case).
/// Compares byte by byte: nothing is allocated per header.
fn normalised_starts_with(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name.bytes().zip(prefix.bytes()).all(|(n, p)| {
            let n = if n == b'_' {
                b'-'
            } else {
                n.to_ascii_lowercase()
            };
            n == p
        })
}

/// Whether `name`, normalised, is `target` (lower case).
fn normalised_eq(name: &str, target: &str) -> bool {
    name.len() == target.len() && normalised_starts_with(name, target)
}

/// Whether a client's header `name` is one the balancer owns, compared by its normalised name
/// (lower case, `_` read as `-`), as many target frameworks compare.
pub fn is_owned(name: &str) -> bool {
    OWNED_PREFIXES
        .iter()
        .any(|p| normalised_starts_with(name, p))
        || (name.contains('_') && OWNED_EXACT.iter().any(|e| normalised_eq(name, e)))
}

/// Removes every header a client sent under a name the balancer owns (`x-amzn-oidc-*`,
/// `x-portcullis-*`, `x-amzn-tls-*`, `x-amzn-mtls-*`, and `_` spellings of the forwarding and
/// trace headers), whatever `drop_invalid_header_fields` says, so only the balancer sets them.
pub fn strip_oidc_headers(h: &mut HeaderMap) {
    remove_where(h, is_owned);
}

/// Removes every header whose name `hit` picks; allocates only when one is found.
fn remove_where(h: &mut HeaderMap, hit: impl Fn(&str) -> bool) {
    let mut names: Vec<HeaderName> = Vec::new();
    for n in h.keys() {
        if hit(n.as_str()) {
            names.push(n.clone());
        }
    }
    for n in names {
        h.remove(n);
    }
}

/// The hosted-UI cookies of the embedded user pools (`__Host-` on HTTPS): the browser's session
/// at the pool and its CSRF token. Browsers send them to every port of the pool's host.
pub const POOL_COOKIES: [&str; 4] = [
    "cognito",
    "XSRF-TOKEN",
    "__Host-cognito",
    "__Host-XSRF-TOKEN",
];

/// The cookies that are credentials of the balancer or of its user pools, removed before a
/// request reaches any target on any listener (a browser sends a host's cookies to every port).
#[derive(Debug, Clone, Default)]
pub struct OwnedCookies {
    /// Session cookie base names (every `session_cookie_name` of the config): their `-N` shards.
    pub shards: Vec<String>,
    /// Exact names (`AWSALBAuthNonce`).
    pub names: Vec<String>,
    /// Hosts the user pools are served on: requests for them also lose [`POOL_COOKIES`].
    pub pool_hosts: Vec<String>,
}

impl OwnedCookies {
    /// Whether a cookie named `name` (sent to `host`) is one of these.
    fn owns(&self, name: &str, pool_here: bool) -> bool {
        let name = name.trim();
        self.names.iter().any(|n| n == name)
            || (pool_here && POOL_COOKIES.contains(&name))
            || self.shards.iter().any(|base| {
                name.strip_prefix(base.as_str())
                    .and_then(|r| r.strip_prefix('-'))
                    .is_some_and(|n| n.parse::<usize>().is_ok())
            })
    }

    /// Whether requests for `host` (a `Host` value, port allowed) carry the pools' cookies.
    fn pool_host(&self, host: Option<&str>) -> bool {
        host.map(crate::rules::host_name)
            .is_some_and(|h| self.pool_hosts.iter().any(|p| p.eq_ignore_ascii_case(h)))
    }
}

/// Joins every `Cookie` header into one (HTTP/2 clients send one per cookie; HTTP/1.1 targets
/// expect one, RFC 9113 §8.2.3), leaving out the cookies `owned` names; `host` is the request's.
pub fn rewrite_cookies(h: &mut HeaderMap, owned: &OwnedCookies, host: Option<&str>) {
    if !h.contains_key(http::header::COOKIE) {
        return;
    }
    let pool_here = owned.pool_host(host);
    // Read as bytes, split with memchr: a 16 KB session cookie is not walked char by char. A
    // value is read only if it is ASCII (what `to_str` accepts: a header value holds no control
    // character but tab), so every piece is UTF-8.
    let mut joined: Vec<u8> = Vec::new();
    for value in h
        .get_all(http::header::COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .filter(|v| v.is_ascii())
    {
        for piece in portcullis_auth::session_cookie::cookie_pieces(value) {
            let name = &piece[..name_end(piece)];
            if piece.is_empty()
                || owned.owns(std::str::from_utf8(name).unwrap_or_default(), pool_here)
            {
                continue;
            }
            if !joined.is_empty() {
                joined.extend_from_slice(b"; ");
            }
            joined.extend_from_slice(piece);
        }
    }
    h.remove(http::header::COOKIE);
    if !joined.is_empty()
        && let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(joined))
    {
        h.insert(http::header::COOKIE, v);
    }
}

/// Where a cookie piece's name ends: its first `=`, or its end.
fn name_end(piece: &[u8]) -> usize {
    piece.iter().position(|b| *b == b'=').unwrap_or(piece.len())
}

/// Removes a target's `Set-Cookie` values that would set one of the cookies `owned` names (the
/// balancer's session shards and nonce, a pool's hosted-UI cookies on its host).
pub fn strip_owned_set_cookies(h: &mut HeaderMap, owned: &OwnedCookies, host: Option<&str>) {
    let pool_here = owned.pool_host(host);
    let theirs = |v: &HeaderValue| {
        let name = v
            .as_bytes()
            .split(|b| *b == b'=')
            .next()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        owned.owns(&name, pool_here)
    };
    if !h.get_all(http::header::SET_COOKIE).iter().any(theirs) {
        return;
    }
    let kept: Vec<HeaderValue> = h
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter(|v| !theirs(v))
        .cloned()
        .collect();
    h.remove(http::header::SET_COOKIE);
    for v in kept {
        h.append(http::header::SET_COOKIE, v);
    }
}

/// Whether a request's `Host` can be routed by: at most one field, its value a host name (letters,
/// digits, `-`, `.`, `_`) or a bracketed IPv6 address, with an optional numeric port. Anything
/// else is answered 400 (RFC 9112 §3.2), never routed by one reading and served by another (a
/// target that reads the last of two `Host` fields, or parses a malformed one). When `Host` is
/// sent, it alone is what the rules read and what the target is sent (the URI's authority, from
/// HTTP/2 `:authority` or an absolute-form target, is replaced by the target's own).
pub fn host_is_sound(h: &HeaderMap) -> bool {
    let mut hosts = h.get_all(http::header::HOST).iter();
    let Some(host) = hosts.next() else {
        return true;
    };
    if hosts.next().is_some() {
        return false;
    }
    let Ok(host) = host.to_str() else {
        return false;
    };
    if host.is_empty() {
        return true;
    }
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) if v6.parse::<std::net::Ipv6Addr>().is_ok() => (None, port),
            _ => return false,
        },
        None => {
            let at = host.find(':').unwrap_or(host.len());
            (Some(&host[..at]), &host[at..])
        }
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| {
            !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
        });
    let name_ok = name.is_none_or(|n| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    });
    port_ok && name_ok
}

/// How many addresses the client's `X-Forwarded-For` headers list.
pub fn xff_count(h: &HeaderMap) -> usize {
    h.get_all(&XFF)
        .iter()
        .map(|v| {
            v.as_bytes()
                .split(|b| *b == b',')
                .filter(|s| !s.iter().all(u8::is_ascii_whitespace))
                .count()
        })
        .sum()
}

/// Client-sent headers that name another host or origin for the request than the one the rules
/// routed by (`X-Forwarded-Host`, RFC 7239 `Forwarded` and its `host=`/`proto=`): frameworks
/// behind a proxy read them in place of `Host` (Express, Django, Spring, ASP.NET), so a request
/// routed by a `host-header` rule for one host would be served as another, and absolute links
/// (password-reset mails) poisoned. The balancer does not set them, so it removes them, unless
/// `X-Forwarded-For` is in `preserve` mode (a trusted proxy in front sets them).
const CLIENT_FORWARDING: [&str; 2] = ["x-forwarded-host", "forwarded"];

/// Appends the client to `X-Forwarded-For` and sets `-Proto` and `-Port` (ALB's `append` mode).
pub fn set_forwarded(
    h: &mut HeaderMap,
    client: &crate::connection::ConnInfo,
    https: bool,
    port: u16,
    r: &Routing,
) {
    if r.xff_mode != XffMode::Preserve {
        // By normalised name: `X_Forwarded_Host` reaches CGI-style targets as the same header.
        remove_where(h, |n| CLIENT_FORWARDING.iter().any(|f| normalised_eq(n, f)));
    }
    match r.xff_mode {
        XffMode::Append => {
            let me = client.forwarded_for(r.xff_client_port);
            if !h.contains_key(&XFF) {
                h.insert(XFF, me.clone());
            } else {
                let prior: Vec<String> = h
                    .get_all(&XFF)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .map(|s| s.trim().to_string())
                    .collect();
                let me = me.to_str().unwrap_or("-");
                let value = format!("{}, {me}", prior.join(", "));
                if let Ok(v) = HeaderValue::from_str(&value) {
                    h.insert(XFF, v);
                }
            }
        }
        XffMode::Preserve => {}
        XffMode::Remove => {
            h.remove(XFF);
        }
    }
    h.insert(
        XFP,
        HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    h.insert(XFPORT, HeaderValue::from(port));
}

/// How `X-Forwarded-For` is handled (`routing.http.xff_header_processing.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XffMode {
    /// Add the client's address.
    Append,
    /// Pass what the client sent.
    Preserve,
    /// Remove it.
    Remove,
}

/// The balancer's `routing.http.*` attributes, part of the config snapshot.
#[derive(Debug, Clone, Copy)]
pub struct Routing {
    /// `X-Forwarded-For` handling.
    pub xff_mode: XffMode,
    /// Append `ip:port`.
    pub xff_client_port: bool,
    /// Pass `Host` unchanged.
    pub preserve_host: bool,
    /// Drop header fields whose names are not `[-A-Za-z0-9]+`.
    pub drop_invalid_header_fields: bool,
    /// Send `x-amzn-tls-version` and `x-amzn-tls-cipher-suite`.
    pub tls_headers: bool,
}

impl Routing {
    /// From the config's `[load_balancer]`.
    pub fn of(lb: &portcullis_config::LoadBalancer) -> Routing {
        Routing {
            xff_mode: match lb.xff_header_processing_mode.as_str() {
                "preserve" => XffMode::Preserve,
                "remove" => XffMode::Remove,
                _ => XffMode::Append,
            },
            xff_client_port: lb.xff_client_port,
            preserve_host: lb.preserve_host_header,
            drop_invalid_header_fields: lb.drop_invalid_header_fields,
            tls_headers: lb.tls_version_and_cipher_suite_headers,
        }
    }
}

/// ALB's `Host` rewrite when `preserve_host_header` is off: the listener's port is added on
/// non-default ports when missing, removed on 80 and 443.
pub fn rewrite_host(h: &mut HeaderMap, listener_port: u16) {
    let Some(host) = h.get(http::header::HOST).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let bare = crate::rules::strip_port(host);
    let value = if listener_port == 80 || listener_port == 443 {
        bare.to_string()
    } else if bare.len() == host.len() {
        format!("{bare}:{listener_port}")
    } else {
        return;
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(http::header::HOST, v);
    }
}

/// Removes header fields whose names have characters outside `[-A-Za-z0-9]` (such as `_`).
pub fn drop_invalid_header_fields(h: &mut HeaderMap) {
    let bad: Vec<HeaderName> = h
        .keys()
        .filter(|n| {
            !n.as_str()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .cloned()
        .collect();
    for n in bad {
        h.remove(n);
    }
}

/// Bytes in a trace id segment: `1-` and 8 hex digits of the epoch, `-` and 24 random hex digits.
pub const TRACE_SEGMENT_LEN: usize = 35;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// xoshiro256++ (Blackman and Vigna), one state per thread: fast and well distributed, not
/// cryptographic. Trace ids are not secrets (targets and logs see them; nothing is authorised by
/// one), so they need to be unique, not unpredictable.
struct Xoshiro256pp([u64; 4]);

impl Xoshiro256pp {
    /// Seeded from the operating system (aws-lc's `SystemRandom`). Should that fail, from the
    /// time, a process-wide counter and the thread, spread by SplitMix64: still unique per
    /// thread, which is all a trace id needs.
    fn from_os() -> Self {
        let mut seed = [0u8; 32];
        let mut s = [0u64; 4];
        if SystemRandom::new().fill(&mut seed).is_ok() {
            for (w, chunk) in s.iter_mut().zip(seed.chunks_exact(8)) {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                *w = u64::from_le_bytes(b);
            }
        }
        if s == [0; 4] {
            static SEEDED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = SEEDED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let mut x = nanos ^ n.rotate_left(32) ^ (&seed as *const _ as u64);
            for w in &mut s {
                // SplitMix64: never yields four zero words in a row.
                x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                *w = z ^ (z >> 31);
            }
        }
        Xoshiro256pp(s)
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

thread_local! {
    /// This thread's generator; all zero until first used (xoshiro's state is never all zero).
    static TRACE_RNG: std::cell::Cell<[u64; 4]> = const { std::cell::Cell::new([0; 4]) };
}

/// 96 random bits from this thread's generator.
fn trace_random() -> [u8; 12] {
    let draw = |rng: &mut Xoshiro256pp| {
        let mut r = [0u8; 12];
        r[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
        r[8..].copy_from_slice(&rng.next_u64().to_be_bytes()[..4]);
        r
    };
    TRACE_RNG
        .try_with(|cell| {
            let mut rng = match cell.get() {
                [0, 0, 0, 0] => Xoshiro256pp::from_os(),
                s => Xoshiro256pp(s),
            };
            let r = draw(&mut rng);
            cell.set(rng.0);
            r
        })
        // Only while the thread is being torn down.
        .unwrap_or_else(|_| draw(&mut Xoshiro256pp::from_os()))
}

/// A new trace id segment `1-<8 hex epoch>-<24 hex random>`, as bytes: written with a hex table
/// into a fixed buffer, the random part from a per-thread xoshiro256++ seeded from the OS. Trace
/// ids are not secrets; they only need to differ.
pub fn trace_segment(now: u64) -> [u8; TRACE_SEGMENT_LEN] {
    let mut out = [0u8; TRACE_SEGMENT_LEN];
    out[0] = b'1';
    out[1] = b'-';
    let epoch = now as u32;
    for (i, d) in out[2..10].iter_mut().enumerate() {
        *d = HEX[(epoch >> (28 - 4 * i)) as usize & 0xf];
    }
    out[10] = b'-';
    for (pair, byte) in out[11..].chunks_exact_mut(2).zip(trace_random()) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
    out
}

/// [`trace_segment`] as a `String`.
pub fn new_trace_segment(now: u64) -> String {
    String::from_utf8(trace_segment(now).to_vec()).unwrap_or_default()
}

/// Sets `X-Amzn-Trace-Id`: a new `Root` when absent; with a `Root`, keep it and set `Self`.
/// Returns the value, for the access log.
/// `head_bytes` is the size of the request's headers as received (`header_bytes`).
pub fn set_trace_id(h: &mut HeaderMap, now: u64, head_bytes: usize) -> String {
    // Over 7 KB of request headers, ALB starts a new trace with just a `Root`.
    let small = head_bytes <= 7 * 1024;
    let existing = h
        .get(&TRACE_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| small && v.len() <= 1024);
    let segment = trace_segment(now);
    let segment = std::str::from_utf8(&segment).unwrap_or_default();
    let value = match existing {
        Some(v) if v.split(';').any(|kv| kv.trim().starts_with("Root=")) => {
            let mut value = String::with_capacity(5 + TRACE_SEGMENT_LEN + v.len() + 1);
            value.push_str("Self=");
            value.push_str(segment);
            for kv in v
                .split(';')
                .map(str::trim)
                .filter(|kv| !kv.starts_with("Self=") && !kv.is_empty())
            {
                value.push(';');
                value.push_str(kv);
            }
            value
        }
        _ => {
            let mut value = String::with_capacity(5 + TRACE_SEGMENT_LEN);
            value.push_str("Root=");
            value.push_str(segment);
            value
        }
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(TRACE_ID, v);
    }
    value
}

#[cfg(test)]
mod tests {
    fn conn(peer: &str) -> crate::connection::ConnInfo {
        crate::connection::ConnInfo {
            id: 1,
            listener: 0,
            port: 80,
            peer: peer.parse().unwrap(),
            tls: None,
            close_after: std::time::Instant::now(),
            requests: Default::default(),
            goaway: Default::default(),
            forwarded_for: Default::default(),
        }
    }

    #[test]
    fn only_one_valid_host_is_routed() {
        let ok = |hosts: &[&str], _: &str| {
            let mut h = HeaderMap::new();
            for v in hosts {
                h.append(http::header::HOST, HeaderValue::from_str(v).unwrap());
            }
            super::host_is_sound(&h)
        };
        assert!(ok(&[], "/"));
        assert!(ok(&["a.example"], "/"));
        assert!(ok(&["a.example:8443"], "/"));
        assert!(ok(&["[::1]:8443"], "/"));
        assert!(ok(&["10.0.0.1"], "/"));
        assert!(ok(&["a.example:80"], "http://a.example:80/x"));
        assert!(!ok(&["a.example", "b.example"], "/"));
        assert!(!ok(&["a.example/x"], "/"));
        assert!(!ok(&["u@a.example"], "/"));
        assert!(!ok(&["a.example, b.example"], "/"));
        assert!(!ok(&["a.example:80:81"], "/"));
        assert!(!ok(&["a.example:"], "/"));
        assert!(!ok(&["[::1"], "/"));
    }

    use super::*;

    /// Sets the trace id of a request whose head is `h`, as the proxy does.
    fn traced(h: &mut HeaderMap, now: u64) -> String {
        let head = header_bytes(h).0;
        set_trace_id(h, now, head)
    }

    /// A request that arrives with trace id `incoming` keeps its fields after a fresh `Self`
    /// (`self_prefix`), `kept` being what follows; the target gets the same value.
    fn assert_self_added(
        h: &mut HeaderMap,
        incoming: &'static str,
        now: u64,
        self_prefix: &str,
        kept: &str,
    ) {
        h.insert(TRACE_ID, HeaderValue::from_static(incoming));
        let v = traced(h, now);
        assert!(v.starts_with(self_prefix), "{v}");
        assert!(v.ends_with(kept), "{v}");
        assert_eq!(v.matches("Self=").count(), 1, "{v}");
        assert_eq!(h.get(TRACE_ID).map(|t| t.as_bytes()), Some(v.as_bytes()));
    }

    #[test]
    fn trace_ids_follow_alb() {
        let mut h = HeaderMap::new();
        assert_self_added(
            &mut h,
            "Root=1-67891233-abcdef012345678912345678;Sampled=1",
            0x6344_1c4a,
            "Self=1-63441c4a-",
            ";Root=1-67891233-abcdef012345678912345678;Sampled=1",
        );
        // Over 7 KB of headers: a new trace with just a Root.
        h.insert(
            "x-big",
            HeaderValue::from_str(&"b".repeat(7 * 1024)).unwrap(),
        );
        let v = traced(&mut h, 0x6344_1c4a);
        assert!(v.starts_with("Root=1-63441c4a-") && !v.contains(';'), "{v}");
    }

    /// The segment as it was built before: `format!` over `hex::encode`.
    fn reference_segment(now: u64, random: &str) -> String {
        format!("1-{:08x}-{random}", now as u32)
    }

    proptest::proptest! {
        #[test]
        fn trace_segments_have_albs_format_and_differ(now in proptest::num::u64::ANY) {
            let a = trace_segment(now);
            let b = trace_segment(now);
            proptest::prop_assert_ne!(a, b);
            for seg in [a, b] {
                let s = std::str::from_utf8(&seg).unwrap();
                proptest::prop_assert_eq!(s.len(), 35);
                proptest::prop_assert!(s[11..].bytes().all(|c| HEX.contains(&c)), "{}", s);
                proptest::prop_assert_eq!(s, reference_segment(now, &s[11..]));
            }
            let v = set_trace_id(&mut HeaderMap::new(), now, 0);
            proptest::prop_assert!(v.starts_with("Root=1-") && v.len() == 40, "{}", v);
        }
    }

    #[test]
    fn trace_randomness_differs_between_threads() {
        let here = trace_segment(1);
        let there = std::thread::spawn(|| trace_segment(1)).join().unwrap();
        assert_ne!(here[11..], there[11..]);
        let mut rng = Xoshiro256pp::from_os();
        assert_ne!(rng.0, [0; 4]);
        assert_ne!(rng.next_u64(), rng.next_u64());
    }

    #[test]
    fn strips_client_oidc_and_hop_by_hop() {
        let mut h = HeaderMap::new();
        h.insert("x-amzn-oidc-data", HeaderValue::from_static("forged"));
        h.insert("x-amzn-oidc-identity", HeaderValue::from_static("admin"));
        h.insert("x-amzn-oidc-whatever", HeaderValue::from_static("x"));
        h.insert("x-portcullis-jwt", HeaderValue::from_static("forged"));
        h.insert("connection", HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_oidc_headers(&mut h);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    /// `rewrite_cookies` as it was before it read bytes.
    fn reference_rewrite(h: &mut HeaderMap, owned: &OwnedCookies, host: Option<&str>) {
        if !h.contains_key(http::header::COOKIE) {
            return;
        }
        let pool_here = owned.pool_host(host);
        let kept: Vec<&str> = h
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .filter(|p| !owned.owns(p.split('=').next().unwrap_or(""), pool_here))
            .collect();
        let joined = kept.join("; ");
        h.remove(http::header::COOKIE);
        if !joined.is_empty()
            && let Ok(v) = HeaderValue::from_str(&joined)
        {
            h.insert(http::header::COOKIE, v);
        }
    }

    proptest::proptest! {
        #[test]
        fn cookie_rewrite_matches_the_str_version(
            values in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        proptest::strategy::Just("S-0=abc".to_string()),
                        proptest::strategy::Just(" S-+1=y".to_string()),
                        proptest::strategy::Just("AWSALBAuthNonce=n ".to_string()),
                        proptest::strategy::Just("cognito=s".to_string()),
                        proptest::strategy::Just("S-2 =z".to_string()),
                        "[\t -:<-~\u{80}-\u{ff}]{0,12}",
                    ],
                    0..5,
                ),
                0..3,
            ),
            pool in proptest::bool::ANY,
        ) {
            let owned = OwnedCookies {
                shards: vec!["S".into()],
                names: vec!["AWSALBAuthNonce".into()],
                pool_hosts: vec!["login.example".into()],
            };
            let host = Some(if pool { "login.example" } else { "app.example" });
            let mut h = HeaderMap::new();
            for pieces in &values {
                let bytes: Vec<u8> = pieces.join(";").chars().map(|c| c as u32 as u8).collect();
                if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                    h.append(http::header::COOKIE, v);
                }
            }
            let mut expected = h.clone();
            reference_rewrite(&mut expected, &owned, host);
            rewrite_cookies(&mut h, &owned, host);
            proptest::prop_assert_eq!(h, expected);
        }
    }

    #[test]
    fn cookies_are_joined_and_ours_removed() {
        let owned = OwnedCookies {
            shards: vec!["AWSELBAuthSessionCookie".into(), "S".into()],
            names: vec!["AWSALBAuthNonce".into()],
            pool_hosts: vec!["login.example".into()],
        };
        let mut h = HeaderMap::new();
        h.append("cookie", HeaderValue::from_static("app=1"));
        h.append(
            "cookie",
            HeaderValue::from_static(
                "AWSELBAuthSessionCookie-0=abc; AWSELBAuthSessionCookie-1=def",
            ),
        );
        h.append(
            "cookie",
            HeaderValue::from_static(
                "AWSALBAuthNonce=n; AWSELBAuthSessionCookieX=keep; theme=dark; cognito=s; XSRF-TOKEN=t",
            ),
        );
        let mut other_host = h.clone();
        let mut trailing_dot = h.clone();
        rewrite_cookies(&mut trailing_dot, &owned, Some("login.example.:8443"));
        assert_eq!(
            trailing_dot["cookie"], "app=1; AWSELBAuthSessionCookieX=keep; theme=dark",
            "a trailing dot names the same host"
        );
        rewrite_cookies(&mut h, &owned, Some("login.example:8443"));
        assert_eq!(h.get_all("cookie").iter().count(), 1);
        assert_eq!(
            h["cookie"],
            "app=1; AWSELBAuthSessionCookieX=keep; theme=dark"
        );
        rewrite_cookies(&mut other_host, &owned, Some("app.example"));
        assert_eq!(
            other_host["cookie"],
            "app=1; AWSELBAuthSessionCookieX=keep; theme=dark; cognito=s; XSRF-TOKEN=t",
            "the pool's cookies never reach another host"
        );
        let mut h = HeaderMap::new();
        h.append("cookie", HeaderValue::from_static("a=1"));
        h.append("cookie", HeaderValue::from_static("AWSALBAuthNonce=n"));
        rewrite_cookies(&mut h, &OwnedCookies::default(), None);
        assert_eq!(h["cookie"], "a=1; AWSALBAuthNonce=n", "kept when not owned");
        let mut h = HeaderMap::new();
        h.append("cookie", HeaderValue::from_static("S-0=x; S-+1=y;S-2 =z"));
        rewrite_cookies(&mut h, &owned, None);
        assert!(h.get("cookie").is_none(), "no empty Cookie header");
    }

    #[test]
    fn targets_cannot_set_owned_cookies() {
        let owned = OwnedCookies {
            shards: vec!["AWSELBAuthSessionCookie".into()],
            names: vec!["AWSALBAuthNonce".into()],
            pool_hosts: vec!["localhost".into()],
        };
        let mut h = HeaderMap::new();
        for v in [
            "app=1; Path=/",
            "AWSELBAuthSessionCookie-0=fixated; Path=/",
            " AWSALBAuthNonce=n",
            "cognito=fixated",
            "theme=dark",
        ] {
            h.append(http::header::SET_COOKIE, HeaderValue::from_static(v));
        }
        let mut elsewhere = h.clone();
        strip_owned_set_cookies(&mut h, &owned, Some("localhost:8443"));
        let left: Vec<_> = h.get_all("set-cookie").iter().collect();
        assert_eq!(left, ["app=1; Path=/", "theme=dark"]);
        strip_owned_set_cookies(&mut elsewhere, &owned, Some("app.example"));
        assert_eq!(elsewhere.get_all("set-cookie").iter().count(), 3);
    }

    #[test]
    fn owned_headers_by_normalised_name() {
        for n in [
            "x_amzn_oidc_identity",
            "x-amzn-oidc_data",
            "x_portcullis_jwt",
            "x_amzn_tls_version",
            "x-amzn-tls-cipher-suite",
            "x-amzn-mtls-clientcert",
            "x_forwarded_for",
            "x_amzn_trace_id",
        ] {
            assert!(is_owned(n), "{n}");
        }
        for n in [
            "x-forwarded-for",
            "x-amzn-trace-id",
            "x-amzn-other",
            "x_custom",
        ] {
            assert!(!is_owned(n), "{n}");
        }
    }

    #[test]
    fn only_websocket_upgrades() {
        let h = |c: &str, u: &str| {
            let mut h = HeaderMap::new();
            h.insert("connection", HeaderValue::from_str(c).unwrap());
            h.insert("upgrade", HeaderValue::from_str(u).unwrap());
            h
        };
        let v11 = http::Version::HTTP_11;
        assert!(upgrade_protocol(&h("Upgrade", "websocket"), v11).is_some());
        assert!(upgrade_protocol(&h("keep-alive, upgrade", "WebSocket"), v11).is_some());
        assert!(upgrade_protocol(&h("upgrade", "h2c"), v11).is_none());
        assert!(upgrade_protocol(&h("upgrade", "websocket, h2c"), v11).is_none());
        assert!(upgrade_protocol(&h("close", "websocket"), v11).is_none());
        assert!(upgrade_protocol(&h("upgrade", "websocket"), http::Version::HTTP_2).is_none());
        let ws = HeaderValue::from_static("websocket");
        assert!(switches_to(&h("Upgrade", "websocket"), &ws));
        assert!(!switches_to(&h("Upgrade", "h2c"), &ws));
        assert!(!switches_to(&h("close", "websocket"), &ws));
        assert!(!switches_to(&HeaderMap::new(), &ws));
    }

    /// ALB's default routing: `X-Forwarded-For` appended, nothing else set.
    fn appending() -> Routing {
        Routing {
            xff_mode: XffMode::Append,
            xff_client_port: false,
            preserve_host: false,
            drop_invalid_header_fields: false,
            tls_headers: false,
        }
    }

    #[test]
    fn forwarded_headers_append() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("203.0.113.1"));
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.2, 203.0.113.3"),
        );
        assert_eq!(xff_count(&h), 3);
        let mut r = appending();
        let client = &conn("[::ffff:10.0.0.9]:5555");
        let mut a = h.clone();
        set_forwarded(&mut a, client, true, 8443, &r);
        assert_eq!(
            a["x-forwarded-for"],
            "203.0.113.1, 203.0.113.2, 203.0.113.3, 10.0.0.9"
        );
        assert_eq!(a["x-forwarded-proto"], "https");
        assert_eq!(a["x-forwarded-port"], "8443");
        r.xff_client_port = true;
        let mut b = HeaderMap::new();
        set_forwarded(&mut b, client, false, 80, &r);
        assert_eq!(b["x-forwarded-for"], "10.0.0.9:5555");
        let mut v6 = HeaderMap::new();
        set_forwarded(&mut v6, &conn("[2001:db8::1]:4444"), false, 80, &r);
        assert_eq!(v6["x-forwarded-for"], "[2001:db8::1]:4444");
        r.xff_mode = XffMode::Preserve;
        let mut p = h.clone();
        set_forwarded(&mut p, client, false, 80, &r);
        assert_eq!(
            p.get_all("x-forwarded-for").iter().count(),
            2,
            "passed as sent"
        );
        r.xff_mode = XffMode::Remove;
        let mut rm = h.clone();
        set_forwarded(&mut rm, client, false, 80, &r);
        assert!(rm.get("x-forwarded-for").is_none());
        assert_eq!(rm["x-forwarded-proto"], "http");
    }

    #[test]
    fn client_forwarding_headers_go_by_normalised_name() {
        let mut r = appending();
        let client = &conn("10.0.0.9:5555");
        let mut h = HeaderMap::new();
        for n in [
            "x-forwarded-host",
            "x_forwarded_host",
            "forwarded",
            "x-forwarded-hostile",
        ] {
            h.insert(
                HeaderName::from_static(n),
                HeaderValue::from_static("admin.example"),
            );
        }
        let mut a = h.clone();
        set_forwarded(&mut a, client, true, 443, &r);
        let left: Vec<&str> = a
            .keys()
            .map(|n| n.as_str())
            .filter(|n| n.contains("host") || *n == "forwarded")
            .collect();
        assert_eq!(
            left,
            ["x-forwarded-hostile"],
            "only an unrelated name is left"
        );
        r.xff_mode = XffMode::Preserve;
        let mut p = h.clone();
        set_forwarded(&mut p, client, true, 443, &r);
        assert!(
            p.contains_key("x_forwarded_host"),
            "a trusted proxy's are kept"
        );
    }

    #[test]
    fn host_rewrite_and_invalid_fields() {
        let host = |v: &str, port: u16| {
            let mut h = HeaderMap::new();
            h.insert("host", HeaderValue::from_str(v).unwrap());
            rewrite_host(&mut h, port);
            h["host"].to_str().unwrap().to_string()
        };
        assert_eq!(host("a.example", 8443), "a.example:8443");
        assert_eq!(host("a.example:9999", 8443), "a.example:9999");
        assert_eq!(host("a.example:8443", 443), "a.example");
        assert_eq!(host("[::1]", 8080), "[::1]:8080");
        let mut h = HeaderMap::new();
        h.insert("x_custom", HeaderValue::from_static("1"));
        h.insert("x-ok", HeaderValue::from_static("1"));
        drop_invalid_header_fields(&mut h);
        assert!(h.get("x_custom").is_none() && h.get("x-ok").is_some());
    }

    #[test]
    fn trace_ids() {
        let mut h = HeaderMap::new();
        let v = traced(&mut h, 0x5f00_0000);
        assert!(
            v.starts_with("Root=1-5f000000-") && v.len() == "Root=1-5f000000-".len() + 24,
            "{v}"
        );
        assert_self_added(
            &mut HeaderMap::new(),
            "Root=1-67891233-abcdef012345678912345678;Self=1-0-0;Foo=bar",
            1,
            "Self=1-00000001-",
            ";Root=1-67891233-abcdef012345678912345678;Foo=bar",
        );
    }
}
