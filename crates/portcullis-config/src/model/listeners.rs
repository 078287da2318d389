//! Listeners, their certificates, and the rules and conditions that route requests.

use super::*;

/// `HTTP` or `HTTPS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Protocol {
    /// Plain HTTP/1.1 (and h2c is not offered).
    HTTP,
    /// TLS with ALPN h2 and http/1.1.
    HTTPS,
}

/// A listener: one port, its certificates, its rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// HTTP or HTTPS.
    pub protocol: Protocol,
    /// Port to bind (0 picks a free one, for tests).
    pub port: u16,
    /// Address to bind.
    #[serde(default = "default_bind")]
    pub address: String,
    /// Certificates for HTTPS (the first is the default when SNI matches none).
    #[serde(default)]
    pub certificates: Vec<Certificate>,
    /// The default rule's actions.
    pub default_actions: Vec<Action>,
    /// Rules other than the default, by priority.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// A certificate source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// Generate a self-signed certificate for these names once into the state dir.
    #[serde(default)]
    pub self_signed: Option<Vec<String>>,
    /// PEM certificate chain.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// A listener rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// 1–50000, unique per listener; lowest is evaluated first.
    pub priority: u32,
    /// All must match.
    pub conditions: Vec<Condition>,
    /// Authentication (optional) then exactly one terminal action.
    pub actions: Vec<Action>,
}

/// A rule condition, as ELBv2's `RuleCondition`.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "RawCondition")]
pub struct Condition {
    /// `host-header`, `path-pattern`, `http-header`, `http-request-method`, `query-string` or
    /// `source-ip`.
    pub field: String,
    /// Any one matching suffices (patterns, methods or CIDRs; not for `query-string`).
    pub values: Vec<String>,
    /// The header an `http-header` condition looks at.
    pub http_header_name: Option<String>,
    /// `query-string` pairs: `{ key = "version", value = "v1*" }`, or `{ value = "*beta*" }` for any key.
    pub query: Vec<QueryMatch>,
    /// `query-string` pairs given as ELBv2's `QueryStringConfig.Values`: `values = [{ key, value }]`.
    pub value_pairs: Vec<QueryMatch>,
}

impl Condition {
    /// The `query-string` pairs, from `query` or from `values` (validation refuses both at once).
    pub fn query_pairs(&self) -> &[QueryMatch] {
        if self.query.is_empty() {
            &self.value_pairs
        } else {
            &self.query
        }
    }
}

/// A condition as written: `values` holds strings, or `{ key, value }` tables (ELBv2's
/// `QueryStringConfig.Values`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    field: String,
    #[serde(default)]
    values: Vec<ConditionValue>,
    #[serde(default)]
    http_header_name: Option<String>,
    #[serde(default)]
    query: Vec<QueryMatch>,
}

/// One entry of a condition's `values`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ConditionValue {
    Text(String),
    Pair(QueryMatch),
}

impl From<RawCondition> for Condition {
    fn from(raw: RawCondition) -> Condition {
        let (mut values, mut value_pairs) = (Vec::new(), Vec::new());
        for v in raw.values {
            match v {
                ConditionValue::Text(t) => values.push(t),
                ConditionValue::Pair(p) => value_pairs.push(p),
            }
        }
        Condition {
            field: raw.field,
            values,
            http_header_name: raw.http_header_name,
            query: raw.query,
            value_pairs,
        }
    }
}

/// One `query-string` pair of a condition (wildcards `*` and `?`; `\` escapes them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryMatch {
    /// The key pattern; any key when absent.
    #[serde(default)]
    pub key: Option<String>,
    /// The value pattern.
    pub value: String,
}
