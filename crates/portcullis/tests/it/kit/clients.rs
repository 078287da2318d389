//! HTTP clients as tests use them: a browser, a plain client, HTTP/2, and the user pool's JSON API.

use super::Kit;
use serde_json::Value;

/// A browser-like client: cookie jar, self-signed certificates accepted, redirects not followed.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .tls_danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A client that speaks HTTP/2 only (prior knowledge; the balancer's certificate accepted).
pub fn h2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// A client without cookies that accepts self-signed certificates and does not follow redirects.
pub fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Location` of a redirect (panics without one).
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location in {r:?}"))
        .to_str()
        .unwrap()
        .to_string()
}

/// The user-pool API as an SDK calls it (public operations, no signature): one `x-amz-target`
/// POST per operation.
#[derive(Clone)]
pub struct PoolApi {
    http: reqwest::Client,
    url: String,
}

impl PoolApi {
    /// The API of `kit`'s pool, through a fresh client.
    pub fn of(kit: &Kit) -> PoolApi {
        PoolApi::at(&kit.pool_url)
    }

    /// The API of the pool served at `pool_url`, through a fresh client.
    pub fn at(pool_url: &str) -> PoolApi {
        PoolApi::with(pool_url, reqwest::Client::new())
    }

    /// The API of the pool at `pool_url`, through `http` (a client with its own settings).
    pub fn with(pool_url: &str, http: reqwest::Client) -> PoolApi {
        PoolApi {
            http,
            url: format!("{pool_url}/"),
        }
    }

    /// Sends operation `op` with `body`; the answer as it came.
    pub async fn send(&self, op: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(&self.url)
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "x-amz-target",
                format!("AWSCognitoIdentityProviderService.{op}"),
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// (status, body) of operation `op`; the body must be JSON.
    pub async fn call(&self, op: &str, body: Value) -> (u16, Value) {
        let r = self.send(op, &body).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// (status, body) of operation `op`; a body that is not JSON reads as `null`.
    pub async fn call_any(&self, op: &str, body: Value) -> (u16, Value) {
        let r = self.send(op, &body).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// (status, body, the header names of the answer but `date`, sorted) of operation `op`.
    pub async fn raw(&self, op: &str, body: Value) -> (u16, Value, Vec<String>) {
        let r = self.send(op, &body).await;
        let status = r.status().as_u16();
        let names = header_names(&r);
        (status, r.json().await.unwrap(), names)
    }

    /// The answer to `USER_PASSWORD_AUTH` of `user` with `password` at app client `client`, which
    /// must succeed (tokens, or a challenge).
    pub async fn password_auth(&self, client: &str, user: &str, password: &str) -> Value {
        self.ok(
            "InitiateAuth",
            serde_json::json!({"ClientId": client, "AuthFlow": "USER_PASSWORD_AUTH",
                "AuthParameters": {"USERNAME": user, "PASSWORD": password}}),
        )
        .await
    }

    /// Signs `user` up with `password` and an `email` at app client `client`, which must succeed.
    pub async fn sign_up(&self, client: &str, user: &str, password: &str, email: &str) -> Value {
        self.ok(
            "SignUp",
            serde_json::json!({"ClientId": client, "Username": user, "Password": password,
                "UserAttributes": [{"Name": "email", "Value": email}]}),
        )
        .await
    }

    /// The body of operation `op`, which must succeed (200).
    pub async fn ok(&self, op: &str, body: Value) -> Value {
        let (s, v) = self.call(op, body).await;
        assert_eq!(s, 200, "{op}: {v}");
        v
    }

    /// The error type (`__type`) of operation `op`, which must fail with 400.
    pub async fn err(&self, op: &str, body: Value) -> String {
        let (s, v) = self.call(op, body).await;
        assert_eq!(s, 400, "{op}: {v}");
        v["__type"].as_str().unwrap().to_string()
    }
}

/// Sends a request whose sending cannot fail in a test and reads its body, in one step.
pub trait Fetch {
    /// The answer's body as text.
    fn fetch_text(self) -> impl std::future::Future<Output = String> + Send;
    /// The answer's body as JSON.
    fn fetch_json<T: serde::de::DeserializeOwned>(
        self,
    ) -> impl std::future::Future<Output = T> + Send;
}

impl Fetch for reqwest::RequestBuilder {
    async fn fetch_text(self) -> String {
        self.send().await.unwrap().text().await.unwrap()
    }

    async fn fetch_json<T: serde::de::DeserializeOwned>(self) -> T {
        self.send().await.unwrap().json().await.unwrap()
    }
}

/// The value of query parameter `name` in `url` (up to the next `&`), as it is written there.
pub fn query_param(url: &str, name: &str) -> String {
    url.split(&format!("{name}="))
        .nth(1)
        .unwrap_or_else(|| panic!("no {name} in {url}"))
        .split('&')
        .next()
        .unwrap()
        .to_string()
}

/// Every `Set-Cookie` value of a response, as text.
pub fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The value a response sets for cookie `name` (up to its first `;`), if it sets one.
pub fn set_cookie_value(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_string())
}

/// A port on 127.0.0.1 that was free a moment ago, for a server started in another process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` on `kit`'s balancer with a `Cookie` header, through a fresh [`plain`] client.
pub async fn get_with_cookie(kit: &Kit, cookie: &str, path: &str) -> reqwest::Response {
    plain()
        .get(kit.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// The `field` strings of the objects in JSON array `list`, in order (key ids, user names, states).
pub fn field_strs<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|item| item[field].as_str().unwrap())
        .collect()
}

/// The header names of an answer but `date` (which changes by the second), sorted.
pub fn header_names(r: &reqwest::Response) -> Vec<String> {
    let mut names: Vec<String> = r
        .headers()
        .keys()
        .map(|k| k.to_string())
        .filter(|k| k != "date")
        .collect();
    names.sort();
    names
}
