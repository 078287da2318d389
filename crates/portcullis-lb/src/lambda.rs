//! Lambda targets: a request becomes ALB's event JSON, the function is called through the Lambda
//! Invoke API (`POST …/2015-03-31/functions/<name>/invocations`, which the Lambda Runtime
//! Interface Emulator serves), and its answer becomes the response, with ALB's 1 MB limits and
//! error reasons.

use crate::error::{ErrorKind, ProxyError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// ALB's limit on the request body sent to a function and on the function's response JSON.
pub const MAX_PAYLOAD: usize = 1024 * 1024;

/// A `lambda` target group's function.
pub struct Function {
    url: String,
    multi_value: bool,
    timeout: Duration,
    client: Client<crate::upstream::Connector, Full<Bytes>>,
}

fn lambda_error(reason: &'static str) -> ProxyError {
    ProxyError::upstream(ErrorKind::Lambda(reason))
}

impl Function {
    /// From config (validated).
    pub fn new(cfg: &portcullis_config::LambdaFunction) -> Function {
        Function {
            url: format!(
                "{}/2015-03-31/functions/{}/invocations",
                cfg.endpoint.trim_end_matches('/'),
                cfg.function
            ),
            multi_value: cfg.multi_value_headers,
            timeout: Duration::from_secs(cfg.timeout_seconds),
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(55))
                .build(crate::upstream::connector(false, true)),
        }
    }

    /// Calls the function for a request whose headers are already as a target gets them.
    /// Returns the response and the function's status code.
    pub async fn invoke(
        &self,
        parts: &http::request::Parts,
        body: crate::body::RequestBody,
        target_group_arn: &str,
    ) -> Result<Response<Bytes>, ProxyError> {
        let body = match crate::upstream::collect_limited(body, MAX_PAYLOAD).await {
            Ok((b, _)) => b,
            Err(()) => return Err(lambda_error("LambdaRequestTooLarge")),
        };
        let event = event(parts, &body, target_group_arn, self.multi_value);
        let req = Request::post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(event.to_string())))
            .map_err(|_| lambda_error("LambdaBadRequest"))?;
        let answer = tokio::time::timeout(self.timeout, async {
            let r = self.client.request(req).await.map_err(|e| {
                if e.is_connect() {
                    lambda_error("LambdaConnectionError")
                } else {
                    lambda_error("LambdaServiceException")
                }
            })?;
            let status = r.status();
            let unhandled = r.headers().contains_key("x-amz-function-error");
            let bytes = crate::upstream::collect_limited(r.into_body(), MAX_PAYLOAD)
                .await
                .map_err(|()| lambda_error("LambdaResponseTooLarge"))?
                .0;
            Ok::<_, ProxyError>((status, unhandled, bytes))
        })
        .await;
        let (status, unhandled, bytes) = match answer {
            Err(_) => return Err(lambda_error("LambdaUnhandled")),
            Ok(r) => r?,
        };
        match status.as_u16() {
            _ if unhandled || function_failed(&bytes) => {
                return Err(lambda_error("LambdaUnhandled"));
            }
            200..=299 => {}
            429 => return Err(lambda_error("LambdaThrottling")),
            403 => return Err(lambda_error("LambdaAccessDenied")),
            404 => return Err(lambda_error("LambdaResourceNotFound")),
            400..=499 => return Err(lambda_error("LambdaBadRequest")),
            // The emulator answers 502 when the function's process fails.
            502 => return Err(lambda_error("LambdaUnhandled")),
            _ => return Err(lambda_error("LambdaServiceException")),
        }
        response(&bytes, self.multi_value).ok_or(lambda_error("LambdaInvalidResponse"))
    }
}

/// Whether an invoke answer reports a failed function without saying so in a header, as the
/// Runtime Interface Emulator does: Lambda's error object (`errorMessage` and `errorType`, no
/// `statusCode`), or its "Task timed out" text.
fn function_failed(answer: &[u8]) -> bool {
    if answer.starts_with(b"Task timed out") {
        return true;
    }
    serde_json::from_slice::<Value>(answer).is_ok_and(|v| {
        v.get("errorType").is_some_and(Value::is_string)
            && v.get("errorMessage").is_some()
            && v.get("statusCode").is_none()
    })
}

/// Media types ALB passes to a function as text; all others are base64.
fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || matches!(
            essence.as_str(),
            "application/json" | "application/javascript" | "application/xml"
        )
}

/// ALB's event for a request.
pub fn event(
    parts: &http::request::Parts,
    body: &[u8],
    target_group_arn: &str,
    multi_value: bool,
) -> Value {
    let mut headers: Map<String, Value> = Map::new();
    for (name, value) in &parts.headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if multi_value {
            match headers
                .entry(name.as_str().to_string())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                Value::Array(a) => a.push(Value::String(v)),
                other => *other = Value::String(v),
            }
        } else {
            // Duplicates: the last value wins.
            headers.insert(name.as_str().to_string(), Value::String(v));
        }
    }
    // The query as it came, not URL-decoded.
    let mut query: Map<String, Value> = Map::new();
    for pair in parts.uri.query().unwrap_or("").split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if multi_value {
            match query
                .entry(k.to_string())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                Value::Array(a) => a.push(Value::String(v.into())),
                other => *other = Value::String(v.into()),
            }
        } else {
            query.insert(k.to_string(), Value::String(v.into()));
        }
    }
    let encoded = parts.headers.contains_key(http::header::CONTENT_ENCODING);
    let ct = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let (body, base64) = match std::str::from_utf8(body) {
        Ok(text) if body.is_empty() || (!encoded && is_text(ct)) => (text.to_string(), false),
        _ => (B64.encode(body), true),
    };
    let (h_key, q_key) = if multi_value {
        ("multiValueHeaders", "multiValueQueryStringParameters")
    } else {
        ("headers", "queryStringParameters")
    };
    let mut e = json!({
        "requestContext": {"elb": {"targetGroupArn": target_group_arn}},
        "httpMethod": parts.method.as_str(),
        "path": parts.uri.path(),
        "body": body,
        "isBase64Encoded": base64,
    });
    e[q_key] = Value::Object(query);
    e[h_key] = Value::Object(headers);
    e
}

/// The response a function's answer describes; `None` when it is not a valid one.
pub fn response(answer: &[u8], multi_value: bool) -> Option<Response<Bytes>> {
    let v: Value = serde_json::from_slice(answer).ok()?;
    let status = v.get("statusCode")?.as_u64()?;
    // A final answer: informational codes cannot end a request.
    let status = StatusCode::from_u16(u16::try_from(status).ok()?)
        .ok()
        .filter(|s| s.as_u16() >= 200)?;
    let body = match v.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(s)) => {
            if v.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
                Bytes::from(B64.decode(s).ok()?)
            } else {
                Bytes::from(s.clone())
            }
        }
        Some(_) => return None,
    };
    let mut headers = HeaderMap::new();
    let pairs: Vec<(&String, &Value)> = match (multi_value, v.get("multiValueHeaders")) {
        (true, Some(Value::Object(m))) => m.iter().collect(),
        _ => match v.get("headers") {
            Some(Value::Object(m)) => m.iter().collect(),
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return None,
        },
    };
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
        // The balancer frames the response itself.
        if matches!(
            name.as_str(),
            "connection" | "transfer-encoding" | "content-length" | "keep-alive"
        ) {
            continue;
        }
        let values: Vec<&Value> = match value {
            Value::Array(a) => a.iter().collect(),
            one => vec![one],
        };
        for one in values {
            let text = match one {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            headers.append(name.clone(), HeaderValue::from_str(&text).ok()?);
        }
    }
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = Request::post(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn single_value_event_keeps_the_last_value_and_the_raw_query() {
        let p = parts(
            "/a%20b?x=1&x=2&y=caf%C3%A9&flag",
            &[
                ("cookie", "a=1"),
                ("cookie", "b=2"),
                ("content-type", "application/json"),
            ],
        );
        let e = event(&p, br#"{"k":1}"#, "arn:tg", false);
        assert_eq!(e["path"], "/a%20b");
        assert_eq!(e["httpMethod"], "POST");
        assert_eq!(e["queryStringParameters"]["x"], "2");
        assert_eq!(e["queryStringParameters"]["y"], "caf%C3%A9");
        assert_eq!(e["queryStringParameters"]["flag"], "");
        assert_eq!(e["headers"]["cookie"], "b=2");
        assert_eq!(e["body"], r#"{"k":1}"#);
        assert_eq!(e["isBase64Encoded"], false);
        assert_eq!(e["requestContext"]["elb"]["targetGroupArn"], "arn:tg");
    }

    #[test]
    fn multi_value_event_and_binary_bodies() {
        let p = parts("/?x=1&x=2", &[("cookie", "a=1"), ("cookie", "b=2")]);
        let e = event(&p, &[0xff, 0x00], "arn", true);
        assert_eq!(e["multiValueQueryStringParameters"]["x"], json!(["1", "2"]));
        assert_eq!(e["multiValueHeaders"]["cookie"], json!(["a=1", "b=2"]));
        assert_eq!(e["isBase64Encoded"], true);
        assert_eq!(e["body"], B64.encode([0xff, 0x00]));
        assert!(e.get("headers").is_none());
        // Text that arrives compressed is base64 too.
        let p = parts(
            "/",
            &[("content-type", "text/plain"), ("content-encoding", "gzip")],
        );
        assert_eq!(event(&p, b"abc", "arn", false)["isBase64Encoded"], true);
        let p = parts("/", &[("content-type", "text/plain; charset=utf-8")]);
        assert_eq!(event(&p, b"abc", "arn", false)["isBase64Encoded"], false);
    }

    proptest::proptest! {
        /// Any answer a function gives either maps to a response or is refused; a well-formed
        /// one maps back exactly (status, headers, body through base64).
        #[test]
        fn answers_round_trip(
            status in 200u16..600,
            headers in proptest::collection::btree_map("x-[a-z0-9-]{1,20}", "[ -~&&[^\\\\]]{0,40}", 0..6),
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            base64 in proptest::bool::ANY,
            junk in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            let _ = response(&junk, false);
            let (text, flag) = match (base64, std::str::from_utf8(&body)) {
                (false, Ok(t)) => (t.to_string(), false),
                _ => (B64.encode(&body), true),
            };
            let answer = json!({"statusCode": status, "headers": headers, "body": text, "isBase64Encoded": flag});
            let r = response(answer.to_string().as_bytes(), false).unwrap();
            proptest::prop_assert_eq!(r.status().as_u16(), status);
            proptest::prop_assert_eq!(r.body().as_ref(), &body[..]);
            for (k, v) in &headers {
                proptest::prop_assert_eq!(r.headers()[k.as_str()].to_str().unwrap(), v.as_str());
            }
        }
    }

    #[test]
    fn failures_without_a_header_are_recognised() {
        assert!(function_failed(
            br#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":[]}"#
        ));
        assert!(function_failed(b"Task timed out after 3.00 seconds"));
        assert!(!function_failed(
            br#"{"statusCode":200,"errorType":"x","errorMessage":"y"}"#
        ));
        assert!(!function_failed(br#"{"statusCode":200}"#));
    }

    #[test]
    fn responses_map_back_or_are_refused() {
        let r = response(
            br#"{"statusCode":201,"statusDescription":"201 Created","isBase64Encoded":true,
                "headers":{"X-A":"1","Content-Length":"99","Transfer-Encoding":"chunked"},"body":"aGk="}"#,
            false,
        )
        .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.body().as_ref(), b"hi");
        assert_eq!(r.headers()["x-a"], "1");
        assert!(!r.headers().contains_key("content-length"));
        assert!(!r.headers().contains_key("transfer-encoding"));
        let r = response(
            br#"{"statusCode":200,"multiValueHeaders":{"Set-Cookie":["a=1","b=2"]}}"#,
            true,
        )
        .unwrap();
        assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
        assert!(r.body().is_empty());
        for bad in [
            &b"not json"[..],
            br#"{"body":"x"}"#,
            br#"{"statusCode":"200"}"#,
            br#"{"statusCode":99}"#,
            br#"{"statusCode":101}"#,
            br#"{"statusCode":200,"headers":{"bad name":"x"}}"#,
            br#"{"statusCode":200,"headers":{"x":"a\nb"}}"#,
            br#"{"statusCode":200,"body":"!!","isBase64Encoded":true}"#,
            br#"{"statusCode":200,"body":{}}"#,
        ] {
            assert!(
                response(bad, false).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
