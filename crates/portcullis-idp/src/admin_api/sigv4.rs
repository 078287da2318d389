//! AWS Signature Version 4 verification for the admin API: the signature is recomputed from the
//! request and the configured secret key and compared in constant time. Only what SDKs send to a
//! JSON 1.1 endpoint is accepted: the `Authorization` header form (no presigned query), SHA-256, and,
//! as AWS requires, `host`, `content-type` and every `x-amz-*` header sent (the operation is
//! `x-amz-target`) among the signed headers, so a signature covers what the request does. The
//! payload hash is always computed from the body; an `x-amz-content-sha256` header must equal it.
//! A signed request can be replayed unchanged within [`MAX_SKEW_SECONDS`], as at AWS.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::hmac;
use http::HeaderMap;

/// How far a request's `X-Amz-Date` may be from our clock (AWS allows 15 minutes).
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// Why a signature was refused; each maps to the exception AWS answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigV4Error {
    /// No `Authorization` header (`MissingAuthenticationTokenException`).
    Missing,
    /// The header or the date cannot be parsed (`IncompleteSignatureException`).
    Malformed(&'static str),
    /// The access key id is not configured (`UnrecognizedClientException`).
    UnknownKey,
    /// Wrong region or service in the credential scope (`InvalidSignatureException`).
    WrongScope(&'static str),
    /// The date is more than 15 minutes away (`InvalidSignatureException`).
    Skewed,
    /// The signature does not match (`InvalidSignatureException`).
    Mismatch,
    /// `x-amz-content-sha256` is not the SHA-256 of the body (`InvalidSignatureException`).
    PayloadHash,
}

impl SigV4Error {
    /// The AWS exception name and message for this failure.
    pub fn exception(&self) -> (&'static str, String) {
        match self {
            SigV4Error::Missing => (
                "MissingAuthenticationTokenException",
                "Missing Authentication Token".into(),
            ),
            SigV4Error::Malformed(why) => ("IncompleteSignatureException", (*why).into()),
            SigV4Error::UnknownKey => (
                "UnrecognizedClientException",
                "The security token included in the request is invalid.".into(),
            ),
            SigV4Error::WrongScope(why) => ("InvalidSignatureException", (*why).into()),
            SigV4Error::Skewed => (
                "InvalidSignatureException",
                "Signature expired: the request date is more than 15 minutes from the server's time."
                    .into(),
            ),
            SigV4Error::PayloadHash => (
                "InvalidSignatureException",
                "The provided x-amz-content-sha256 header does not match what was computed.".into(),
            ),
            SigV4Error::Mismatch => (
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
                    .into(),
            ),
        }
    }
}

/// The parts of a request the signature covers.
pub struct SignedRequest<'a> {
    /// `POST`.
    pub method: &'a str,
    /// The path, as sent.
    pub path: &'a str,
    /// The raw query string (empty when none).
    pub query: &'a str,
    /// All request headers.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: &'a [u8],
}

impl<'a> SignedRequest<'a> {
    /// `POST /` without a query: every API request.
    pub fn api_post(headers: &'a HeaderMap, body: &'a [u8]) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers,
            body,
        }
    }
}

struct AuthHeader<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(v: &str) -> Result<AuthHeader<'_>, SigV4Error> {
    let rest = v
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or(SigV4Error::Malformed(
            "Authorization header must use AWS4-HMAC-SHA256",
        ))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(c) = part.strip_prefix("Credential=") {
            credential = Some(c);
        } else if let Some(s) = part.strip_prefix("SignedHeaders=") {
            signed = Some(s);
        } else if let Some(s) = part.strip_prefix("Signature=") {
            signature = Some(s);
        }
    }
    let missing = SigV4Error::Malformed(
        "Authorization header requires Credential, SignedHeaders and Signature",
    );
    let (credential, signed, signature) = match (credential, signed, signature) {
        (Some(c), Some(h), Some(s)) => (c, h, s),
        _ => return Err(missing),
    };
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[4] != "aws4_request" {
        return Err(SigV4Error::Malformed(
            "Credential must be <key>/<date>/<region>/<service>/aws4_request",
        ));
    }
    let signed_headers: Vec<&str> = signed.split(';').collect();
    if signed_headers.iter().any(|h| h.is_empty())
        || !signed_headers.windows(2).all(|w| w[0] < w[1])
    {
        return Err(SigV4Error::Malformed(
            "SignedHeaders must be sorted, lowercase and non-empty",
        ));
    }
    Ok(AuthHeader {
        access_key: scope[0],
        date: scope[1],
        region: scope[2],
        service: scope[3],
        signed_headers,
        signature,
    })
}

/// Seconds since the epoch of an ISO 8601 basic timestamp (`20261124T010036Z`).
fn parse_amz_date(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, fmt)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

fn hex_sha256(b: &[u8]) -> String {
    hex::encode(digest(&SHA256, b).as_ref())
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), msg)
        .as_ref()
        .to_vec()
}

/// Header values as SigV4 canonicalises them: trimmed, runs of spaces collapsed, repeated headers
/// joined by commas.
fn canonical_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut out = Vec::new();
    for v in headers.get_all(name) {
        let s = std::str::from_utf8(v.as_bytes()).ok()?;
        out.push(s.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    (!out.is_empty()).then(|| out.join(","))
}

/// The query string sorted by name then value, as SigV4 wants (values stay as sent).
fn canonical_query(q: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Verifies a request signed for `service` in `region`; `secret_of` returns the secret access key
/// of an access key id. Returns the access key id that signed.
pub fn verify(
    req: &SignedRequest<'_>,
    region: &str,
    service: &str,
    now: i64,
    secret_of: impl Fn(&str) -> Option<String>,
) -> Result<String, SigV4Error> {
    let auth = req
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or(SigV4Error::Missing)?
        .to_str()
        .map_err(|_| SigV4Error::Malformed("Authorization header is not ASCII"))?;
    let a = parse_authorization(auth)?;
    if !a.signed_headers.contains(&"host") {
        return Err(SigV4Error::Malformed(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    // An unsigned header that changes what the request does (the operation, the body's type, any
    // `x-amz-*`) could be swapped by whoever captured the request.
    if req
        .headers
        .keys()
        .any(|h| must_be_signed(h.as_str()) && !a.signed_headers.contains(&h.as_str()))
    {
        return Err(SigV4Error::Malformed(
            "SignedHeaders must include host, content-type and every x-amz-* header sent",
        ));
    }
    let amz_date = req
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or(SigV4Error::Malformed("X-Amz-Date header is missing"))?;
    let when = parse_amz_date(amz_date).ok_or(SigV4Error::Malformed(
        "X-Amz-Date must look like 20261124T010036Z",
    ))?;
    if !amz_date.starts_with(a.date) || a.date.len() != 8 {
        return Err(SigV4Error::Malformed(
            "the Credential date does not match X-Amz-Date",
        ));
    }
    if a.service != service {
        return Err(SigV4Error::WrongScope(
            "Credential should be scoped to the correct service: 'cognito-idp'.",
        ));
    }
    if a.region != region {
        return Err(SigV4Error::WrongScope(
            "Credential should be scoped to a valid region.",
        ));
    }
    if (now - when).abs() > MAX_SKEW_SECONDS {
        return Err(SigV4Error::Skewed);
    }
    let secret = secret_of(a.access_key).ok_or(SigV4Error::UnknownKey)?;
    let payload_hash = hex_sha256(req.body);
    if let Some(claimed) = req.headers.get("x-amz-content-sha256")
        && claimed.as_bytes() != payload_hash.as_bytes()
    {
        return Err(SigV4Error::PayloadHash);
    }
    let canonical = canonical_request(req, &a.signed_headers, &payload_hash)?;
    let want = signature(&secret, a.date, a.region, a.service, amz_date, &canonical);
    if aws_lc_rs::constant_time::verify_slices_are_equal(want.as_bytes(), a.signature.as_bytes())
        .is_err()
    {
        return Err(SigV4Error::Mismatch);
    }
    Ok(a.access_key.to_string())
}

/// Whether a header must be among the signed ones when a request carries it (as AWS requires).
fn must_be_signed(name: &str) -> bool {
    name == "host" || name == "content-type" || name.starts_with("x-amz-")
}

/// The canonical request: method, path, sorted query, the signed headers, and the body's hash.
fn canonical_request(
    req: &SignedRequest<'_>,
    signed_headers: &[&str],
    payload_hash: &str,
) -> Result<String, SigV4Error> {
    let mut canonical = String::with_capacity(256 + req.body.len().min(64));
    canonical.push_str(req.method);
    canonical.push('\n');
    canonical.push_str(if req.path.is_empty() { "/" } else { req.path });
    canonical.push('\n');
    canonical.push_str(&canonical_query(req.query));
    canonical.push('\n');
    for h in signed_headers {
        let v = canonical_value(req.headers, h)
            .ok_or(SigV4Error::Malformed("a signed header is missing"))?;
        canonical.push_str(h);
        canonical.push(':');
        canonical.push_str(&v);
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&signed_headers.join(";"));
    canonical.push('\n');
    canonical.push_str(payload_hash);
    Ok(canonical)
}

/// The hex signature of a canonical request under the secret's derived signing key.
fn signature(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    amz_date: &str,
    canonical: &str,
) -> String {
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex_sha256(canonical.as_bytes())
    );
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"aws4_request");
    hex::encode(hmac_sha256(&k_signing, to_sign.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Signed by botocore's SigV4Auth (not ours) for this exact request.
    const BODY: &[u8] = br#"{"UserPoolId":"us-east-1_Demo12345","Username":"alice"}"#;
    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-east-1/cognito-idp/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=8fe851930655d04e870f7249fb9a7fb67ba00754650d2e0370558e3457b6ff44";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            "application/x-amz-json-1.1".parse().unwrap(),
        );
        h.insert(
            "x-amz-target",
            "AWSCognitoIdentityProviderService.AdminGetUser"
                .parse()
                .unwrap(),
        );
        h.insert("x-amz-date", "20261124T010036Z".parse().unwrap());
        h.insert("host", "127.0.0.1:9000".parse().unwrap());
        h.insert("authorization", auth.parse().unwrap());
        h
    }

    fn check(h: &HeaderMap, body: &[u8], now: i64) -> Result<String, SigV4Error> {
        let req = SignedRequest::api_post(h, body);
        verify(&req, "us-east-1", "cognito-idp", now, |k| {
            (k == "AKIDEXAMPLE").then(|| SECRET.to_string())
        })
    }

    const NOW: i64 = 1_795_482_036; // 2026-11-24T01:00:36Z

    #[test]
    fn botocore_signature_verifies() {
        assert_eq!(parse_amz_date("20261124T010036Z"), Some(NOW));
        assert_eq!(
            check(&headers(AUTH), BODY, NOW + 60).unwrap(),
            "AKIDEXAMPLE"
        );
    }

    #[test]
    fn any_change_breaks_it() {
        assert_eq!(check(&headers(AUTH), b"{}", NOW), Err(SigV4Error::Mismatch));
        let mut h = headers(AUTH);
        h.insert(
            "x-amz-target",
            "AWSCognitoIdentityProviderService.AdminDeleteUser"
                .parse()
                .unwrap(),
        );
        assert_eq!(check(&h, BODY, NOW), Err(SigV4Error::Mismatch));
        let forged = AUTH.replace("Signature=8f", "Signature=9f");
        assert_eq!(
            check(&headers(&forged), BODY, NOW),
            Err(SigV4Error::Mismatch)
        );
    }

    #[test]
    fn scope_key_and_clock_are_checked() {
        assert_eq!(
            check(&headers(AUTH), BODY, NOW + 16 * 60),
            Err(SigV4Error::Skewed)
        );
        let other = AUTH.replace("AKIDEXAMPLE", "AKIDOTHER");
        assert_eq!(
            check(&headers(&other), BODY, NOW),
            Err(SigV4Error::UnknownKey)
        );
        let region = AUTH.replace("us-east-1", "eu-west-1");
        assert!(matches!(
            check(&headers(&region), BODY, NOW),
            Err(SigV4Error::WrongScope(_))
        ));
        let service = AUTH.replace("cognito-idp", "s3");
        assert!(matches!(
            check(&headers(&service), BODY, NOW),
            Err(SigV4Error::WrongScope(_))
        ));
        let mut h = headers(AUTH);
        h.remove("authorization");
        assert_eq!(check(&h, BODY, NOW), Err(SigV4Error::Missing));
        for bad in [
            "Bearer x",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-east-1/cognito-idp/aws4_request",
            "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host;x-amz-date, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-east-1/cognito-idp/aws4_request, SignedHeaders=x-amz-date;host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-east-1/cognito-idp/aws4_request, SignedHeaders=content-type, Signature=00",
        ] {
            assert!(
                matches!(
                    check(&headers(bad), BODY, NOW),
                    Err(SigV4Error::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    /// Signs `h` and `body` over `signed` (our canonicalisation, which botocore's vector checks).
    fn sign(h: &mut HeaderMap, body: &[u8], signed: &[&str]) {
        let req = SignedRequest::api_post(h, body);
        let canonical = canonical_request(&req, signed, &hex_sha256(body)).unwrap();
        let sig = signature(
            SECRET,
            "20261124",
            "us-east-1",
            "cognito-idp",
            "20261124T010036Z",
            &canonical,
        );
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-east-1/cognito-idp/aws4_request, SignedHeaders={}, Signature={sig}",
            signed.join(";")
        );
        h.insert("authorization", auth.parse().unwrap());
    }

    #[test]
    fn the_operation_and_every_amz_header_must_be_signed() {
        let full = ["content-type", "host", "x-amz-date", "x-amz-target"];
        let mut h = headers("");
        sign(&mut h, BODY, &full);
        assert_eq!(check(&h, BODY, NOW).unwrap(), "AKIDEXAMPLE");
        // A signature over host and date alone would let the operation be swapped.
        for signed in [
            &["host", "x-amz-date"][..],
            &["content-type", "host", "x-amz-date"],
            &["host", "x-amz-date", "x-amz-target"],
            &["content-type", "x-amz-date", "x-amz-target"],
        ] {
            let mut h = headers("");
            sign(&mut h, BODY, signed);
            assert!(
                matches!(check(&h, BODY, NOW), Err(SigV4Error::Malformed(_))),
                "{signed:?}"
            );
        }
        // Any other x-amz-* header sent must be signed too.
        let mut h = headers("");
        h.insert("x-amz-security-token", "t".parse().unwrap());
        sign(&mut h, BODY, &full);
        assert!(matches!(
            check(&h, BODY, NOW),
            Err(SigV4Error::Malformed(_))
        ));
    }

    #[test]
    fn a_claimed_payload_hash_must_be_the_bodys() {
        let signed = [
            "content-type",
            "host",
            "x-amz-content-sha256",
            "x-amz-date",
            "x-amz-target",
        ];
        let mut h = headers("");
        h.insert("x-amz-content-sha256", hex_sha256(BODY).parse().unwrap());
        sign(&mut h, BODY, &signed);
        assert_eq!(check(&h, BODY, NOW).unwrap(), "AKIDEXAMPLE");
        let mut h = headers("");
        h.insert("x-amz-content-sha256", "UNSIGNED-PAYLOAD".parse().unwrap());
        sign(&mut h, BODY, &signed);
        assert_eq!(check(&h, BODY, NOW), Err(SigV4Error::PayloadHash));
        // The body signed is the body checked, whatever the header claims.
        let mut h = headers("");
        h.insert("x-amz-content-sha256", hex_sha256(BODY).parse().unwrap());
        sign(&mut h, BODY, &signed);
        let other = br#"{"UserPoolId":"us-east-1_Demo12345","Username":"bob"}"#;
        assert_eq!(check(&h, other, NOW), Err(SigV4Error::PayloadHash));
    }

    #[test]
    fn query_is_sorted() {
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_query(""), "");
    }
}
