//! One reading of a request's path for the rules and the target alike.
//!
//! `path-pattern` rules compare the path byte for byte, while most targets (web servers,
//! frameworks, file servers) normalise a path before they route it: they remove `.` and `..`
//! segments, decode `%61` to `a`, and merge `//`. Were the rules to match the raw path and the
//! target to be sent it, `/x/../admin` would skip a rule for `/admin/*` and still be served as
//! `/admin` (the same for `/%61dmin` and `//admin`). So the balancer normalises the path once
//! (RFC 3986 §6.2.2: percent-encoded unreserved characters decoded, dot segments removed) and
//! merges empty segments, matches the rules against the result, and sends the target that same
//! path. What would still climb in some target's reading, a dot segment next to an encoded
//! separator (`..%2F`, `..%5C`, `..\`) or a path parameter (`..;`), is refused.

/// A path the balancer refuses (400): a dot segment hidden behind an encoded separator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// The normalised form of `path`: `Ok(None)` when it is already normal (or is not an
/// origin-form path, such as `*`), `Ok(Some(normal))` otherwise, `Err(Refused)` when refused.
pub fn normalise(path: &str) -> Result<Option<String>, Refused> {
    if !path.starts_with('/') {
        return Ok(None);
    }
    let decoded = decode_unreserved(path);
    let mut out: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for seg in decoded.split('/').skip(1) {
        trailing_slash = false;
        match seg {
            "" | "." => trailing_slash = true,
            ".." => {
                out.pop();
                trailing_slash = true;
            }
            s => {
                if climbs(s) {
                    return Err(Refused);
                }
                out.push(s);
            }
        }
    }
    let mut normal = String::with_capacity(decoded.len());
    for s in &out {
        normal.push('/');
        normal.push_str(s);
    }
    if trailing_slash || normal.is_empty() {
        normal.push('/');
    }
    Ok((normal != path).then_some(normal))
}

/// Whether a segment holds a dot segment that a target splitting on `\`, a decoded `%2F` or
/// `%5C`, or `;` (path parameters) would read.
fn climbs(seg: &str) -> bool {
    let unified = seg
        .replace("%2F", "/")
        .replace("%2f", "/")
        .replace("%5C", "/")
        .replace("%5c", "/")
        .replace('\\', "/");
    unified.split('/').any(|piece| {
        let piece = piece.split(';').next().unwrap_or("");
        piece == "." || piece == ".."
    })
}

/// Decodes percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`), which mean the same
/// decoded or not (RFC 3986 §2.3); every other escape is kept as sent.
fn decode_unreserved(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                b.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            let c = (h * 16 + l) as u8;
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                out.push(c as char);
            } else {
                out.push_str(&path[i..i + 3]);
            }
            i += 3;
            continue;
        }
        // Paths are ASCII on the wire (the URI parser refuses anything else); copy a char.
        let ch = path[i..].chars().next().unwrap_or('?');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Refused, normalise};

    #[test]
    fn paths_are_normalised_once() {
        let n = |p: &str| normalise(p).map(|o| o.unwrap_or_else(|| p.to_string()));
        assert_eq!(n("/a/b"), Ok("/a/b".into()));
        assert_eq!(n("/"), Ok("/".into()));
        assert_eq!(n("*"), Ok("*".into()));
        assert_eq!(n("/x/../admin"), Ok("/admin".into()));
        assert_eq!(n("/../../admin"), Ok("/admin".into()));
        assert_eq!(n("/%61dmin/%7Euser"), Ok("/admin/~user".into()));
        assert_eq!(n("/x/%2e%2E/admin"), Ok("/admin".into()));
        assert_eq!(n("//admin//a/"), Ok("/admin/a/".into()));
        assert_eq!(n("/a/b/.."), Ok("/a/".into()));
        assert_eq!(n("/a/."), Ok("/a/".into()));
        assert_eq!(n("/a%2Fb/c%20d"), Ok("/a%2Fb/c%20d".into()));
        assert_eq!(n("/x/..%2Fadmin"), Err(Refused));
        assert_eq!(n("/x/..%5cadmin"), Err(Refused));
        assert_eq!(n("/x/..\\admin"), Err(Refused));
        assert_eq!(n("/x/..;/admin"), Err(Refused));
        assert_eq!(n("/x/%2e;a/admin"), Err(Refused));
        assert_eq!(n("/a..b/.c/..."), Ok("/a..b/.c/...".into()));
    }
}
