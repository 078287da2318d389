//! Secrets in the config are given either literally (`client_secret = "…"`) or as the name of an
//! environment variable that holds them (`client_secret_env = "VAR"`), so that the file need not
//! hold them. Validation allows one of the two; the literal wins when both are present.

/// Why a secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The named environment variable is not set (or is not Unicode).
    #[error("{field}: environment variable {var} is not set")]
    EnvUnset {
        /// The setting that names the variable (`client_secret_env`, with its path).
        field: String,
        /// The variable.
        var: String,
    },
    /// Neither the value nor a variable is configured.
    #[error("{field}: no value")]
    Missing {
        /// The setting that was expected (its `_env` form, with its path).
        field: String,
    },
}

/// The secret from `literal`, else from the environment variable `env_var`; `None` when neither
/// is configured. `env_field` names the `*_env` setting in errors (`messages.smtp.password_env`).
pub fn literal_or_env(
    literal: Option<&str>,
    env_var: Option<&str>,
    env_field: &str,
) -> Result<Option<String>, SecretError> {
    match (literal, env_var) {
        (Some(v), _) => Ok(Some(v.to_owned())),
        (None, Some(var)) => std::env::var(var)
            .map(Some)
            .map_err(|_| SecretError::EnvUnset {
                field: env_field.to_owned(),
                var: var.to_owned(),
            }),
        (None, None) => Ok(None),
    }
}

/// As [`literal_or_env`] for a secret that must be configured: neither is [`SecretError::Missing`].
pub fn required(
    literal: Option<&str>,
    env_var: Option<&str>,
    env_field: &str,
) -> Result<String, SecretError> {
    literal_or_env(literal, env_var, env_field)?.ok_or_else(|| SecretError::Missing {
        field: env_field.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_wins_then_environment() {
        assert_eq!(
            literal_or_env(Some("s"), Some("PORTCULLIS_SECRET_TEST_UNSET"), "x_env"),
            Ok(Some("s".into()))
        );
        assert_eq!(literal_or_env(None, None, "x_env"), Ok(None));
        let e = required(None, Some("PORTCULLIS_SECRET_TEST_UNSET"), "a.x_env").unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.x_env: environment variable PORTCULLIS_SECRET_TEST_UNSET is not set"
        );
        assert_eq!(
            required(None, None, "a.x_env").unwrap_err().to_string(),
            "a.x_env: no value"
        );
        // PATH is set in every environment the tests run in.
        assert!(required(None, Some("PATH"), "p").is_ok());
    }
}
