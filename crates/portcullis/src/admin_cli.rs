//! `portcullis users|groups|clients ...`: user-pool administration from the command line. The
//! commands work on the pool's store directly (SQLite file or PostgreSQL), so they need no running
//! server and no keys; running nodes see the changes (users at once, clients within seconds). Each
//! command is one user-pool API operation and prints the API's JSON answer.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use portcullis_idp::Pool;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::PathBuf;

/// Which pool of which config.
#[derive(Args)]
pub struct PoolArgs {
    /// The TOML config Portcullis runs.
    #[arg(long, short)]
    pub config: PathBuf,
    /// The user pool's name (optional when the config has one pool).
    #[arg(long)]
    pub pool: Option<String>,
}

/// `portcullis users ...`.
#[derive(Subcommand)]
pub enum UsersCommand {
    /// List users, optionally filtered (`'email ^= "a"'`, `'cognito:user_status = "CONFIRMED"'`).
    List {
        /// A ListUsers filter.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Show one user.
    Get {
        /// The user name.
        username: String,
    },
    /// Create a user in FORCE_CHANGE_PASSWORD (or CONFIRMED with --permanent); the password is read
    /// from standard input when --password-stdin is given, else one is generated.
    Create {
        /// The user name.
        username: String,
        /// The email address.
        #[arg(long)]
        email: Option<String>,
        /// Other attributes, `name=value` (repeatable).
        #[arg(long = "attribute", value_name = "NAME=VALUE")]
        attributes: Vec<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Make the password permanent (CONFIRMED) instead of temporary.
        #[arg(long, requires = "password_stdin")]
        permanent: bool,
        /// Send the invitation with the temporary password to the outbox.
        #[arg(long)]
        invite: bool,
    },
    /// Set a password, read from standard input (permanent unless --temporary).
    SetPassword {
        /// The user name.
        username: String,
        /// The user must choose a new one at the next sign-in.
        #[arg(long)]
        temporary: bool,
    },
    /// Delete a user.
    Delete {
        /// The user name.
        username: String,
    },
    /// Disable a user (and sign them out everywhere).
    Disable {
        /// The user name.
        username: String,
    },
    /// Enable a user.
    Enable {
        /// The user name.
        username: String,
    },
    /// Confirm a user's sign-up without the code.
    Confirm {
        /// The user name.
        username: String,
    },
    /// Revoke every refresh token and hosted-UI session of a user.
    SignOut {
        /// The user name.
        username: String,
    },
    /// Add a user to a group.
    AddToGroup {
        /// The user name.
        username: String,
        /// The group.
        group: String,
    },
    /// Remove a user from a group.
    RemoveFromGroup {
        /// The user name.
        username: String,
        /// The group.
        group: String,
    },
    /// The groups of a user.
    Groups {
        /// The user name.
        username: String,
    },
}

/// `portcullis groups ...`.
#[derive(Subcommand)]
pub enum GroupsCommand {
    /// List groups.
    List,
    /// Create a group.
    Create {
        /// The group name.
        name: String,
        /// Lower wins when a user is in several groups.
        #[arg(long)]
        precedence: Option<u32>,
        /// What it is for.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a group.
    Delete {
        /// The group name.
        name: String,
    },
    /// The members of a group.
    Members {
        /// The group name.
        name: String,
    },
}

/// `portcullis clients ...`.
#[derive(Subcommand)]
pub enum ClientsCommand {
    /// List app clients.
    List,
    /// Show one app client (with its secret).
    Get {
        /// The client id.
        client_id: String,
    },
    /// Create an app client.
    Create {
        /// Display name.
        name: String,
        /// Give it a secret (a confidential client).
        #[arg(long)]
        generate_secret: bool,
        /// OAuth flows: code, implicit, client_credentials (repeatable).
        #[arg(long = "flow")]
        flows: Vec<String>,
        /// Allowed scopes (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Callback URLs (repeatable).
        #[arg(long = "callback-url")]
        callback_urls: Vec<String>,
        /// Sign-out URLs (repeatable).
        #[arg(long = "logout-url")]
        logout_urls: Vec<String>,
        /// ExplicitAuthFlows such as ALLOW_USER_PASSWORD_AUTH (repeatable).
        #[arg(long = "auth-flow")]
        auth_flows: Vec<String>,
    },
    /// Delete an app client.
    Delete {
        /// The client id.
        client_id: String,
    },
    /// Add a second secret (rotation).
    AddSecret {
        /// The client id.
        client_id: String,
    },
    /// Delete a secret by its id.
    DeleteSecret {
        /// The client id.
        client_id: String,
        /// The secret's id (from `clients list-secrets`).
        secret_id: String,
    },
    /// List a client's secrets (ids and dates, never values).
    ListSecrets {
        /// The client id.
        client_id: String,
    },
}

/// `portcullis keys ...`.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// List the pool's token-signing keys and their state.
    List,
    /// Add new ID and access keys. They are published at once and sign after --activate-in seconds
    /// (so verifiers that cache the JWKS see them first); old keys stay published until every
    /// token they signed has expired.
    Rotate {
        /// Seconds until the new keys sign.
        #[arg(long, default_value_t = 3600)]
        activate_in: i64,
    },
}

/// Runs a `keys` command.
pub async fn keys(args: PoolArgs, cmd: KeysCommand) -> Result<Value> {
    let pool = open(&args).await?;
    match cmd {
        KeysCommand::List => Ok(pool.key_report().await?),
        KeysCommand::Rotate { activate_in } => {
            let kids = pool.rotate_keys(activate_in).await?;
            Ok(
                json!({"Added": kids, "ActivatesIn": activate_in, "Keys": pool.key_report().await?["Keys"]}),
            )
        }
    }
}

/// Opens the pool a command works on (no listeners, no seed users).
async fn open(args: &PoolArgs) -> Result<Pool> {
    let config = portcullis_config::load(&args.config)
        .map(|l| l.config)
        .map_err(|e| anyhow!("{e}"))?;
    let pool_cfg = match &args.pool {
        Some(name) => config
            .user_pools
            .iter()
            .find(|p| &p.name == name)
            .ok_or_else(|| anyhow!("{}: no user pool named `{name}`", args.config.display()))?,
        None => match config.user_pools.as_slice() {
            [one] => one,
            [] => bail!("{}: no user pools", args.config.display()),
            _ => bail!(
                "{}: several user pools; choose one with --pool",
                args.config.display()
            ),
        },
    };
    let state_dir = &config.load_balancer.state_dir;
    portcullis_config::state_dir::secure(state_dir)
        .with_context(|| args.config.display().to_string())?;
    let store = portcullis_idp::store::open(config.store.as_deref(), state_dir)
        .await
        .context("opening the user pool store")?;
    Pool::open(
        pool_cfg,
        &config.load_balancer.region,
        store,
        HashMap::new(),
        state_dir,
    )
    .await
    .map_err(|e| anyhow!(e))
}

fn read_password() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_line(&mut s)
        .context("reading the password from standard input")?;
    let pw = s.trim_end_matches(['\n', '\r']).to_string();
    if pw.is_empty() {
        bail!("no password on standard input");
    }
    Ok(pw)
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

async fn run(pool: &Pool, op: &str, request: Value) -> Result<Value> {
    portcullis_idp::admin_api::call(pool, op, obj(request))
        .await
        .map_err(|e| anyhow!("{}: {}", e.exception(), e.message()))
}

fn attributes(email: Option<String>, pairs: &[String]) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    if let Some(e) = email {
        out.push(json!({"Name": "email", "Value": e}));
    }
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| anyhow!("--attribute {p}: use name=value"))?;
        out.push(json!({"Name": k, "Value": v}));
    }
    Ok(out)
}

/// Runs a `users` command; returns the JSON to print.
pub async fn users(args: PoolArgs, cmd: UsersCommand) -> Result<Value> {
    let pool = open(&args).await?;
    let p = &pool;
    match cmd {
        UsersCommand::List { filter } => {
            let mut all = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut req = json!({"Limit": 60});
                if let Some(f) = &filter {
                    req["Filter"] = f.clone().into();
                }
                if let Some(t) = &token {
                    req["PaginationToken"] = t.clone().into();
                }
                let page = run(p, "ListUsers", req).await?;
                all.extend(page["Users"].as_array().cloned().unwrap_or_default());
                match page["PaginationToken"].as_str() {
                    Some(t) => token = Some(t.to_string()),
                    None => break,
                }
            }
            Ok(json!({"Users": all}))
        }
        UsersCommand::Get { username } => {
            run(p, "AdminGetUser", json!({"Username": username})).await
        }
        UsersCommand::Create {
            username,
            email,
            attributes: attrs,
            password_stdin,
            permanent,
            invite,
        } => {
            let mut req = json!({
                "Username": username,
                "UserAttributes": attributes(email, &attrs)?,
            });
            let password = if password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            if let Some(pw) = &password
                && !permanent
            {
                req["TemporaryPassword"] = pw.clone().into();
            }
            if !invite {
                req["MessageAction"] = "SUPPRESS".into();
            }
            let created = run(p, "AdminCreateUser", req).await?;
            if let (Some(pw), true) = (password, permanent) {
                run(
                    p,
                    "AdminSetUserPassword",
                    json!({"Username": username, "Password": pw, "Permanent": true}),
                )
                .await?;
                return run(p, "AdminGetUser", json!({"Username": username})).await;
            }
            Ok(created)
        }
        UsersCommand::SetPassword {
            username,
            temporary,
        } => {
            let pw = read_password()?;
            run(
                p,
                "AdminSetUserPassword",
                json!({"Username": username, "Password": pw, "Permanent": !temporary}),
            )
            .await
        }
        UsersCommand::Delete { username } => {
            run(p, "AdminDeleteUser", json!({"Username": username})).await
        }
        UsersCommand::Disable { username } => {
            run(p, "AdminDisableUser", json!({"Username": username})).await
        }
        UsersCommand::Enable { username } => {
            run(p, "AdminEnableUser", json!({"Username": username})).await
        }
        UsersCommand::Confirm { username } => {
            run(p, "AdminConfirmSignUp", json!({"Username": username})).await
        }
        UsersCommand::SignOut { username } => {
            run(p, "AdminUserGlobalSignOut", json!({"Username": username})).await
        }
        UsersCommand::AddToGroup { username, group } => {
            run(
                p,
                "AdminAddUserToGroup",
                json!({"Username": username, "GroupName": group}),
            )
            .await
        }
        UsersCommand::RemoveFromGroup { username, group } => {
            run(
                p,
                "AdminRemoveUserFromGroup",
                json!({"Username": username, "GroupName": group}),
            )
            .await
        }
        UsersCommand::Groups { username } => {
            run(p, "AdminListGroupsForUser", json!({"Username": username})).await
        }
    }
}

/// Runs a `groups` command.
pub async fn groups(args: PoolArgs, cmd: GroupsCommand) -> Result<Value> {
    let pool = open(&args).await?;
    let p = &pool;
    match cmd {
        GroupsCommand::List => run(p, "ListGroups", json!({})).await,
        GroupsCommand::Create {
            name,
            precedence,
            description,
        } => {
            let mut req = json!({"GroupName": name});
            if let Some(n) = precedence {
                req["Precedence"] = n.into();
            }
            if let Some(d) = description {
                req["Description"] = d.into();
            }
            run(p, "CreateGroup", req).await
        }
        GroupsCommand::Delete { name } => run(p, "DeleteGroup", json!({"GroupName": name})).await,
        GroupsCommand::Members { name } => {
            run(p, "ListUsersInGroup", json!({"GroupName": name})).await
        }
    }
}

/// Runs a `clients` command.
pub async fn clients(args: PoolArgs, cmd: ClientsCommand) -> Result<Value> {
    let pool = open(&args).await?;
    let p = &pool;
    match cmd {
        ClientsCommand::List => run(p, "ListUserPoolClients", json!({})).await,
        ClientsCommand::Get { client_id } => {
            run(p, "DescribeUserPoolClient", json!({"ClientId": client_id})).await
        }
        ClientsCommand::Create {
            name,
            generate_secret,
            flows,
            scopes,
            callback_urls,
            logout_urls,
            auth_flows,
        } => {
            let mut req = json!({
                "ClientName": name,
                "GenerateSecret": generate_secret,
                "AllowedOAuthFlows": flows,
                "AllowedOAuthScopes": scopes,
                "CallbackURLs": callback_urls,
                "LogoutURLs": logout_urls,
                "AllowedOAuthFlowsUserPoolClient": !flows.is_empty(),
                "PreventUserExistenceErrors": "ENABLED",
            });
            if !auth_flows.is_empty() {
                req["ExplicitAuthFlows"] = auth_flows.into();
            }
            run(p, "CreateUserPoolClient", req).await
        }
        ClientsCommand::Delete { client_id } => {
            run(p, "DeleteUserPoolClient", json!({"ClientId": client_id})).await
        }
        ClientsCommand::AddSecret { client_id } => {
            run(p, "AddUserPoolClientSecret", json!({"ClientId": client_id})).await
        }
        ClientsCommand::DeleteSecret {
            client_id,
            secret_id,
        } => {
            run(
                p,
                "DeleteUserPoolClientSecret",
                json!({"ClientId": client_id, "ClientSecretId": secret_id}),
            )
            .await
        }
        ClientsCommand::ListSecrets { client_id } => {
            run(
                p,
                "ListUserPoolClientSecrets",
                json!({"ClientId": client_id}),
            )
            .await
        }
    }
}
