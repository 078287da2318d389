//! The Portcullis configuration: the model (`model`), loading with precise parse errors, and
//! validation (`validate`) that names the file, the field and the reason.

pub mod identity_provider;
pub mod model;
pub mod state_dir;
pub mod validate;

pub use identity_provider::{
    COGNITO_PROVIDER, IdentityProvider, identity_provider_problems, is_idp_identifier,
    is_provider_name,
};
pub use model::*;
pub use validate::{
    ConfigError, EXPLICIT_AUTH_FLOWS, RESERVED_SCOPES, callback_url_problem, client_problems,
    is_loopback_host, ordered_actions, parse_url, validate,
};

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a config file could not be used.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io {
        file: PathBuf,
        error: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the model.
    Parse {
        file: PathBuf,
        field: String,
        line: Option<usize>,
        column: Option<usize>,
        reason: String,
    },
    /// The file parses but breaks a rule.
    Invalid(Vec<ConfigError>),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { file, error } => write!(f, "{}: cannot read: {error}", file.display()),
            LoadError::Parse {
                file,
                field,
                line,
                column,
                reason,
            } => {
                write!(f, "{}", file.display())?;
                if let (Some(l), Some(c)) = (line, column) {
                    write!(f, ":{l}:{c}")?;
                }
                if !field.is_empty() && field != "." {
                    write!(f, ": {field}")?;
                }
                write!(f, ": {reason}")
            }
            LoadError::Invalid(errors) => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// A validated config and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file it was read from (for messages and reloads).
    pub file: PathBuf,
    /// The config, with relative paths resolved against the file's folder.
    pub config: Config,
}

/// Reads, parses and validates a config file.
pub fn load(file: &Path) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(file).map_err(|error| LoadError::Io {
        file: file.to_path_buf(),
        error,
    })?;
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    load_str(&text, file, &base)
}

/// Parses and validates config text; `file` names it in errors, `base` resolves relative paths.
pub fn load_str(text: &str, file: &Path, base: &Path) -> Result<Loaded, LoadError> {
    let mut config = parse(text, file)?;
    resolve_paths(&mut config, base);
    let errors = validate(&config, file);
    if !errors.is_empty() {
        return Err(LoadError::Invalid(errors));
    }
    Ok(Loaded {
        file: file.to_path_buf(),
        config,
    })
}

fn parse(text: &str, file: &Path) -> Result<Config, LoadError> {
    let parse_error = |field: String, span: Option<std::ops::Range<usize>>, reason: String| {
        let (line, column) = match span {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        LoadError::Parse {
            file: file.to_path_buf(),
            field,
            line,
            column,
            reason,
        }
    };
    let de = toml::Deserializer::parse(text)
        .map_err(|e| parse_error(String::new(), e.span(), e.message().to_string()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        parse_error(field, inner.span(), inner.message().to_string())
    })
}

fn resolve_paths(config: &mut Config, base: &Path) {
    let fix = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    fix(&mut config.load_balancer.state_dir);
    let certs = config
        .listeners
        .iter_mut()
        .flat_map(|l| l.certificates.iter_mut())
        .chain(
            config
                .user_pools
                .iter_mut()
                .flat_map(|p| p.domain.certificates.iter_mut()),
        );
    for c in certs {
        if let Some(p) = c.cert_file.as_mut() {
            fix(p);
        }
        if let Some(p) = c.key_file.as_mut() {
            fix(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        load_str(text, Path::new("lb.toml"), Path::new("."))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_field_names_file_line_and_path() {
        let e = err("[load_balancer]\nname = \"x\"\nnmae = 1\n");
        assert!(e.starts_with("lb.toml:3:1: "), "{e}");
        assert!(e.contains("unknown field `nmae`"), "{e}");
    }

    /// The load error of a config with one HTTP listener whose default action is `action` (an
    /// inline table), then `rest`; the action is on line 7, as the leading newline keeps it.
    fn action_err(action: &str, rest: &str) -> String {
        err(&format!(
            "
[load_balancer]
name = \"x\"
[[listeners]]
protocol = \"HTTP\"
port = 80
default_actions = [{action}]
{rest}"
        ))
    }

    #[test]
    fn wrong_type_in_nested_action_names_its_path() {
        let e = action_err(
            r#"{ type = "fixed-response", status_code = "four hundred" }"#,
            "",
        );
        assert!(e.contains("listeners[0].default_actions[0]"), "{e}");
        assert!(e.contains("lb.toml:7:"), "{e}");
    }

    #[test]
    fn unknown_action_type_is_named() {
        let e = action_err(r#"{ type = "teleport" }"#, "");
        assert!(e.contains("teleport"), "{e}");
    }

    #[test]
    fn unknown_field_inside_action_is_refused() {
        let e = action_err(
            r#"{ type = "forward", target_group = "a", weight = 3 }"#,
            r#"[[target_groups]]
name = "a"
targets = [{ id = "127.0.0.1", port = 1 }]"#,
        );
        assert!(e.contains("unknown field `weight`"), "{e}");
    }
}
