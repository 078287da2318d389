//! Reading an API request: typed members with Cognito's validation errors ([`Req`]), and the
//! app client a request names.

use crate::domain::catalog::StoredClient;
use crate::domain::pool::Pool;
use crate::error::IdpError;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Typed reads of a request's members.
pub(super) struct Req<'a>(pub(super) &'a Map<String, Value>);

impl Req<'_> {
    /// Member `k` as a string, if it is one.
    pub(super) fn opt(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(Value::as_str)
    }
    /// Member `k`: a non-empty string of at most 4096 bytes, else Cognito's validation error.
    pub(super) fn str(&self, k: &str) -> Result<&str, IdpError> {
        match self.opt(k) {
            Some(v) if !v.is_empty() && v.len() <= 4096 => Ok(v),
            _ => Err(IdpError::InvalidParameter(format!(
                "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(k)
            ))),
        }
    }
    /// Member `k` as a boolean.
    pub(super) fn bool(&self, k: &str) -> Option<bool> {
        self.0.get(k).and_then(Value::as_bool)
    }
    /// Member `k` as an integer.
    pub(super) fn int(&self, k: &str) -> Option<i64> {
        self.0.get(k).and_then(Value::as_i64)
    }
    /// Member `k`: its strings, if it is a list (none otherwise).
    pub(super) fn strings(&self, k: &str) -> Vec<String> {
        self.0
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Member `k` as an object (empty otherwise).
    pub(super) fn map(&self, k: &str) -> Map<String, Value> {
        self.0
            .get(k)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }
    /// `[{Name, Value}]` → `{name: value}`.
    pub(super) fn attributes(&self, k: &str) -> Result<Map<String, Value>, IdpError> {
        let mut out = Map::new();
        let Some(list) = self.0.get(k) else {
            return Ok(out);
        };
        let Some(list) = list.as_array() else {
            return Err(IdpError::InvalidParameter(format!("{k} must be a list")));
        };
        if list.len() > 100 {
            return Err(IdpError::InvalidParameter(format!(
                "{k}: at most 100 attributes"
            )));
        }
        for a in list {
            let (Some(n), Some(v)) = (
                a.get("Name").and_then(Value::as_str),
                a.get("Value").and_then(Value::as_str),
            ) else {
                return Err(IdpError::InvalidParameter(format!(
                    "{k}: each attribute needs Name and Value"
                )));
            };
            out.insert(n.to_string(), v.into());
        }
        Ok(out)
    }
}

/// `Username` → `username`, as Cognito names members in its errors.
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The app client named by `ClientId`.
pub(super) fn client_of(pool: &Pool, r: &Req<'_>) -> Result<Arc<StoredClient>, IdpError> {
    let id = r.str("ClientId")?;
    pool.client(id).ok_or_else(|| {
        IdpError::ResourceNotFound(format!(
            "User pool client {} does not exist.",
            id.chars().take(128).collect::<String>()
        ))
    })
}

/// `{}`: the answer of an operation that returns nothing.
pub(super) fn unit(r: Result<(), IdpError>) -> Result<Value, IdpError> {
    r.map(|()| json!({}))
}
