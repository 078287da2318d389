//! The `ListUsers` filter language: `name = "value"` or `name ^= "prefix"` over Cognito's
//! filterable attributes, and whether a user matches.

use crate::error::IdpError;
use crate::store::UserRecord;
use serde_json::Value;

/// A parsed `ListUsers` filter: `name = "value"` or `name ^= "prefix"`.
#[derive(Debug, PartialEq, Eq)]
pub struct Filter {
    /// The attribute (`email`, `username`, `cognito:user_status`, ...).
    pub attribute: String,
    /// `^=` rather than `=`.
    pub prefix: bool,
    /// The unescaped value.
    pub value: String,
}

/// Attributes `ListUsers` can filter on (Cognito's list).
const FILTERABLE: [&str; 11] = [
    "username",
    "email",
    "phone_number",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "cognito:user_status",
    "status",
    "sub",
    "nickname",
];

/// Parses a `ListUsers` filter (`None` for an empty one).
pub fn parse_filter(f: &str) -> Result<Option<Filter>, IdpError> {
    let bad = || IdpError::InvalidParameter(format!("Error while parsing filter: {f}"));
    let f = f.trim();
    if f.is_empty() {
        return Ok(None);
    }
    // The operator is whatever precedes the opening quote (values may contain `=` and `^=`).
    let quote = f.find('"').ok_or_else(bad)?;
    let (head, rest) = f.split_at(quote);
    let head = head.trim_end();
    let (name, prefix) = if let Some(n) = head.strip_suffix("^=") {
        (n, true)
    } else if let Some(n) = head.strip_suffix('=') {
        (n, false)
    } else {
        return Err(bad());
    };
    let name = name.trim();
    if !FILTERABLE.contains(&name) {
        return Err(IdpError::InvalidParameter(format!(
            "Invalid search attribute: {name}"
        )));
    }
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(bad)?;
    let mut value = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.push(chars.next().ok_or_else(bad)?),
            '"' => return Err(bad()),
            c => value.push(c),
        }
    }
    Ok(Some(Filter {
        attribute: name.to_string(),
        prefix,
        value,
    }))
}

/// Whether `u` matches `f`.
pub(super) fn filter_matches(f: &Filter, u: &UserRecord) -> bool {
    let got: Option<String> = match f.attribute.as_str() {
        "username" => Some(u.username.clone()),
        "sub" => Some(u.sub.clone()),
        "cognito:user_status" => Some(u.status.clone()),
        "status" => Some(if u.enabled { "Enabled" } else { "Disabled" }.into()),
        a => u
            .attributes
            .get(a)
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    match got {
        Some(g) if f.prefix => g.starts_with(&f.value),
        Some(g) => g == f.value,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_like_cognitos() {
        assert_eq!(
            parse_filter(r#"email = "a@example.com""#).unwrap(),
            Some(Filter {
                attribute: "email".into(),
                prefix: false,
                value: "a@example.com".into()
            })
        );
        assert_eq!(
            parse_filter(r#"username ^= "al\"x""#).unwrap(),
            Some(Filter {
                attribute: "username".into(),
                prefix: true,
                value: "al\"x".into()
            })
        );
        assert_eq!(parse_filter("  ").unwrap(), None);
        assert_eq!(
            parse_filter(r#"name = "a ^= b = c""#)
                .unwrap()
                .unwrap()
                .value,
            "a ^= b = c"
        );
        for bad in [
            "email",
            r#"email = a"#,
            r#"password = "x""#,
            r#"email = "a"b""#,
            r#"email = "a\"#,
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Any value, quoted with `\` escapes, parses back to itself, for both operators.
        #[test]
        fn filter_values_round_trip(value in "[^\u{0}]{0,40}", prefix in proptest::bool::ANY) {
            let quoted: String = value
                .chars()
                .flat_map(|c| if c == '"' || c == '\\' { vec!['\\', c] } else { vec![c] })
                .collect();
            let op = if prefix { "^=" } else { "=" };
            let f = parse_filter(&format!("email {op} \"{quoted}\"")).unwrap().unwrap();
            proptest::prop_assert_eq!(f.value, value);
            proptest::prop_assert_eq!(f.prefix, prefix);
        }

        /// Arbitrary text never panics the parser.
        #[test]
        fn filter_parser_never_panics(s in ".{0,80}") {
            let _ = parse_filter(&s);
        }
    }
}
