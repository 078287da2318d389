//! Statements both stores run, written once in PostgreSQL's spelling (`$1` parameters, `TRUE` and
//! `NOT flag` for flags); SQLite reads them through `sqlite::lite`, which numbers the parameters
//! `?1` (SQLite keeps flags as 0 and 1, which `TRUE` and `NOT` read the same way). Statements whose
//! dialects differ live in each backend's module.

use super::Put;

// Client secrets, documents and signing keys.

/// Seeds a client's secret unless it has one.
pub(crate) const CLIENT_SECRET_SEED: &str = "INSERT INTO client_secrets (pool_id, client_id, secret) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
/// A client's secret.
pub(crate) const CLIENT_SECRET: &str =
    "SELECT secret FROM client_secrets WHERE pool_id = $1 AND client_id = $2";
/// Sets a client's secret.
pub(crate) const CLIENT_SECRET_SET: &str =
    "INSERT INTO client_secrets (pool_id, client_id, secret) VALUES ($1, $2, $3)
     ON CONFLICT (pool_id, client_id) DO UPDATE SET secret = excluded.secret";

/// Writes a document `($1 pool, $2 kind, $3 id, $4 body, $5 now)` as [`Put`] says.
pub(crate) fn object_put(mode: Put) -> &'static str {
    match mode {
        Put::Insert => {
            "INSERT INTO pool_objects (pool_id, kind, id, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING"
        }
        Put::Upsert => {
            "INSERT INTO pool_objects (pool_id, kind, id, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (pool_id, kind, id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at"
        }
        Put::Update => {
            "UPDATE pool_objects SET body = $4, updated_at = $5 WHERE pool_id = $1 AND kind = $2 AND id = $3"
        }
    }
}
/// One document's body.
pub(crate) const OBJECT: &str =
    "SELECT body FROM pool_objects WHERE pool_id = $1 AND kind = $2 AND id = $3";
/// Every document of a kind, by id.
pub(crate) const OBJECTS: &str =
    "SELECT id, body FROM pool_objects WHERE pool_id = $1 AND kind = $2 ORDER BY id";
/// Deletes a document.
pub(crate) const OBJECT_DELETE: &str =
    "DELETE FROM pool_objects WHERE pool_id = $1 AND kind = $2 AND id = $3";

/// A pool's signing keys for one purpose, oldest generation first.
pub(crate) const SIGNING_KEYS: &str = "SELECT kid, pkcs8, generation, created_at FROM signing_keys WHERE pool_id = $1 AND purpose = $2 ORDER BY generation";
/// Adds a signing key unless its generation exists.
pub(crate) const SIGNING_KEY_INSERT: &str = "INSERT INTO signing_keys (kid, pool_id, purpose, generation, pkcs8, created_at) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT DO NOTHING";

// Users.

/// The columns [`UserRecord`](super::UserRecord)s are read from, in order.
macro_rules! user_columns {
    () => {
        "sub, username, password_hash, status, enabled, attributes, created_at, updated_at"
    };
}
pub(crate) use user_columns;

/// Creates a user `($1 sub, $2 pool, $3 username, $4 hash, $5 status, $6 enabled, $7 attributes,
/// $8 now)` unless the name is taken.
pub(crate) const USER_INSERT: &str = "INSERT INTO users (sub, pool_id, username, password_hash, status, enabled, attributes, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT DO NOTHING";
/// Sets a user's password hash and status (by name).
pub(crate) const USER_SET_PASSWORD: &str = "UPDATE users SET password_hash = $1, status = $2, updated_at = $3 WHERE pool_id = $4 AND username = $5";
/// A user by name.
pub(crate) const USER_BY_USERNAME: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE pool_id = $1 AND username = $2"
);
/// A user by `sub`.
pub(crate) const USER_BY_SUB: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE pool_id = $1 AND sub = $2"
);
/// Rewrites a user (by `sub`).
pub(crate) const USER_SAVE: &str = "UPDATE users SET password_hash = $1, status = $2, enabled = $3, attributes = $4, updated_at = $5
     WHERE pool_id = $6 AND sub = $7";
/// What deleting a user `($1 pool, $2 sub)` clears first: memberships, hosted-UI sessions, and
/// refresh tokens (revoked).
pub(crate) const USER_DELETE_FIRST: [&str; 3] = [
    "DELETE FROM group_members WHERE pool_id = $1 AND sub = $2",
    HOSTED_SESSIONS_OF_USER_DELETE,
    "UPDATE refresh_tokens SET revoked = TRUE WHERE pool_id = $1 AND sub = $2",
];
/// Deletes a user.
pub(crate) const USER_DELETE: &str = "DELETE FROM users WHERE pool_id = $1 AND sub = $2";
/// Revokes a user's live refresh tokens (global sign-out).
pub(crate) const USER_TOKENS_REVOKE: &str =
    "UPDATE refresh_tokens SET revoked = TRUE WHERE pool_id = $1 AND sub = $2 AND NOT revoked";
/// How many users a pool has.
pub(crate) const USER_COUNT: &str = "SELECT COUNT(*) FROM users WHERE pool_id = $1";

// Groups.

/// Creates or updates a group.
pub(crate) const GROUP_UPSERT: &str = "INSERT INTO user_groups (pool_id, name, precedence, description) VALUES ($1, $2, $3, $4)
     ON CONFLICT (pool_id, name) DO UPDATE SET precedence = excluded.precedence, description = excluded.description";
/// Creates a group unless it exists.
pub(crate) const GROUP_INSERT: &str = "INSERT INTO user_groups (pool_id, name, precedence, description) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
/// Removes every member of a group.
pub(crate) const GROUP_MEMBERS_DELETE: &str =
    "DELETE FROM group_members WHERE pool_id = $1 AND group_name = $2";
/// Deletes a group.
pub(crate) const GROUP_DELETE: &str = "DELETE FROM user_groups WHERE pool_id = $1 AND name = $2";
/// Adds a member.
pub(crate) const GROUP_MEMBER_ADD: &str = "INSERT INTO group_members (pool_id, group_name, sub) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
/// Removes a member.
pub(crate) const GROUP_MEMBER_REMOVE: &str =
    "DELETE FROM group_members WHERE pool_id = $1 AND group_name = $2 AND sub = $3";
/// A group's members.
pub(crate) const GROUP_MEMBERS: &str =
    "SELECT sub FROM group_members WHERE pool_id = $1 AND group_name = $2 ORDER BY sub";
/// A user's groups, by precedence (groups without one last), then name.
pub(crate) const GROUPS_OF: &str = "SELECT g.name FROM group_members m JOIN user_groups g ON g.pool_id = m.pool_id AND g.name = m.group_name
     WHERE m.pool_id = $1 AND m.sub = $2 ORDER BY g.precedence IS NULL, g.precedence, g.name";

// Codes, refresh tokens and their families, hosted-UI sessions.

/// Stores a code `($1 hash, $2 pool, $3 client, $4 sub, $5 redirect_uri, $6 scope, $7 nonce,
/// $8 challenge, $9 auth_time, $10 expires_at)`.
pub(crate) const CODE_INSERT: &str = "INSERT INTO auth_codes (code_hash, pool_id, client_id, sub, redirect_uri, scope, nonce, code_challenge, auth_time, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
/// Spends a live code `($1 hash, $2 pool, $3 now)` for the family `$4` and returns it.
pub(crate) const CODE_TAKE: &str = "UPDATE auth_codes SET used = TRUE, origin_jti = $4
     WHERE code_hash = $1 AND pool_id = $2 AND NOT used AND expires_at > $3
     RETURNING client_id, sub, redirect_uri, scope, nonce, code_challenge, auth_time";
/// The family a spent code started.
pub(crate) const CODE_FAMILY: &str =
    "SELECT origin_jti FROM auth_codes WHERE code_hash = $1 AND pool_id = $2 AND used";

/// The columns [`RefreshRecord`](super::RefreshRecord)s are read from, in order.
macro_rules! refresh_columns {
    () => {
        "client_id, sub, scope, auth_time, origin_jti"
    };
}
pub(crate) use refresh_columns;

/// True when the family of the `refresh_tokens` row `t` was revoked (any of its tokens, or the
/// family itself).
macro_rules! family_revoked {
    () => {
        "(EXISTS (SELECT 1 FROM refresh_tokens f WHERE f.pool_id = t.pool_id AND f.origin_jti = t.origin_jti AND f.revoked)
  OR EXISTS (SELECT 1 FROM revoked_families r WHERE r.pool_id = t.pool_id AND r.origin_jti = t.origin_jti))"
    };
}
pub(crate) use family_revoked;

/// Stores a refresh token `($1 hash, $2 pool, $3 client, $4 sub, $5 scope, $6 auth_time,
/// $7 origin_jti, $8 expires_at)`.
pub(crate) const REFRESH_INSERT: &str = "INSERT INTO refresh_tokens (token_hash, pool_id, client_id, sub, scope, auth_time, origin_jti, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// A live refresh token `($1 hash, $2 pool, $3 now)`.
pub(crate) const REFRESH: &str = concat!(
    "SELECT ",
    refresh_columns!(),
    " FROM refresh_tokens t
     WHERE token_hash = $1 AND pool_id = $2 AND NOT revoked AND expires_at > $3
     AND NOT ",
    family_revoked!()
);
/// A live refresh token of a client `($1 hash, $2 pool, $3 client, $4 now)`, with when its
/// retirement ends.
pub(crate) const REFRESH_OF_CLIENT: &str = concat!(
    "SELECT ",
    refresh_columns!(),
    ", retired_until FROM refresh_tokens t
     WHERE token_hash = $1 AND pool_id = $2 AND client_id = $3 AND NOT revoked
     AND expires_at > $4 AND NOT ",
    family_revoked!()
);
/// Revokes a client's refresh token and returns its family.
pub(crate) const REFRESH_REVOKE: &str = "UPDATE refresh_tokens SET revoked = TRUE WHERE token_hash = $1 AND pool_id = $2 AND client_id = $3 RETURNING origin_jti";
/// Whether a family was revoked.
pub(crate) const FAMILY_IS_REVOKED: &str = "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE pool_id = $1 AND origin_jti = $2 AND revoked)
     OR EXISTS (SELECT 1 FROM revoked_families WHERE pool_id = $1 AND origin_jti = $2)";
/// Marks a family revoked `($1 pool, $2 origin_jti, $3 now)`; the mark holds for tokens stored
/// later.
pub(crate) const FAMILY_MARK: &str = "INSERT INTO revoked_families (pool_id, origin_jti, revoked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
/// Revokes a family's refresh tokens.
pub(crate) const FAMILY_TOKENS_REVOKE: &str =
    "UPDATE refresh_tokens SET revoked = TRUE WHERE pool_id = $1 AND origin_jti = $2";

/// Forgets expired hosted-UI sessions `($1 now)`.
pub(crate) const HOSTED_SESSIONS_SWEEP: &str = "DELETE FROM sessions WHERE expires_at <= $1";
/// Stores a hosted-UI session `($1 hash, $2 pool, $3 sub, $4 auth_time, $5 expires_at)`.
pub(crate) const HOSTED_SESSION_INSERT: &str = "INSERT INTO sessions (id_hash, pool_id, sub, auth_time, expires_at) VALUES ($1, $2, $3, $4, $5)";
/// A live hosted-UI session `($1 hash, $2 pool, $3 now)`.
pub(crate) const HOSTED_SESSION: &str =
    "SELECT sub, auth_time FROM sessions WHERE id_hash = $1 AND pool_id = $2 AND expires_at > $3";
/// Ends a hosted-UI session.
pub(crate) const HOSTED_SESSION_DELETE: &str =
    "DELETE FROM sessions WHERE id_hash = $1 AND pool_id = $2";
/// Ends a user's hosted-UI sessions.
pub(crate) const HOSTED_SESSIONS_OF_USER_DELETE: &str =
    "DELETE FROM sessions WHERE pool_id = $1 AND sub = $2";

// Failed sign-ins.

/// Ends a password check's in-flight mark.
pub(crate) const SIGN_IN_RELEASE: &str =
    "UPDATE sign_in_failures SET busy_until = 0 WHERE pool_id = $1 AND username = $2";
/// When a user's lockout ends.
pub(crate) const LOCKED_UNTIL: &str =
    "SELECT locked_until FROM sign_in_failures WHERE pool_id = $1 AND username = $2";
/// Forgets a user's failures.
pub(crate) const FAILURES_CLEAR: &str =
    "DELETE FROM sign_in_failures WHERE pool_id = $1 AND username = $2";

// One-time tickets.

/// Forgets expired tickets `($1 now)` (codes, decoys, spent budgets), so the table stays bounded.
pub(crate) const TICKETS_SWEEP: &str = "DELETE FROM tickets WHERE expires_at <= $1";
/// Stores a ticket `($1 pool, $2 purpose, $3 key, $4 value, $5 expires_at)`, replacing one.
pub(crate) const TICKET_PUT: &str = "INSERT INTO tickets (pool_id, purpose, key, value, expires_at, attempts) VALUES ($1, $2, $3, $4, $5, 0)
     ON CONFLICT (pool_id, purpose, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, attempts = 0";
/// A live ticket `($1 pool, $2 purpose, $3 key, $4 now)` and its wrong guesses.
pub(crate) const TICKET: &str = "SELECT value, attempts FROM tickets WHERE pool_id = $1 AND purpose = $2 AND key = $3 AND expires_at > $4";
/// Counts a guess at a live ticket that has had fewer than `$5`.
pub(crate) const TICKET_GUESS: &str = "UPDATE tickets SET attempts = attempts + 1
     WHERE pool_id = $1 AND purpose = $2 AND key = $3 AND expires_at > $4 AND attempts < $5
     RETURNING value, attempts";
/// Deletes a live ticket and returns its value.
pub(crate) const TICKET_TAKE: &str = "DELETE FROM tickets WHERE pool_id = $1 AND purpose = $2 AND key = $3 AND expires_at > $4 RETURNING value";

// Sign-in sessions.

/// The columns a sign-in session is read from, in order.
macro_rules! sign_in_columns {
    () => {
        "sid, sub, started_at, expires_at, ended_at"
    };
}

/// Forgets the grants of a user's expired sessions `($1 pool, $2 sub, $3 now)`.
pub(crate) const EXPIRED_GRANTS_OF_USER_DELETE: &str =
    "DELETE FROM sign_in_grants WHERE pool_id = $1 AND sid IN
     (SELECT sid FROM sign_in_sessions WHERE pool_id = $1 AND sub = $2 AND expires_at <= $3)";
/// Forgets a user's expired sessions.
pub(crate) const EXPIRED_SIGN_INS_OF_USER_DELETE: &str =
    "DELETE FROM sign_in_sessions WHERE pool_id = $1 AND sub = $2 AND expires_at <= $3";
/// Records a session `($1 pool, $2 sid, $3 sub, $4 started_at, $5 expires_at)`.
pub(crate) const SIGN_IN_INSERT: &str = "INSERT INTO sign_in_sessions (pool_id, sid, sub, started_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
/// Records a family given in a session `($1 pool, $2 origin_jti, $3 sid, $4 client)`.
pub(crate) const SIGN_IN_GRANT_INSERT: &str =
    "INSERT INTO sign_in_grants (pool_id, origin_jti, sid, client_id) VALUES ($1, $2, $3, $4)
     ON CONFLICT DO NOTHING";
/// A session unexpired at `$3`.
pub(crate) const SIGN_IN: &str = concat!(
    "SELECT ",
    sign_in_columns!(),
    " FROM sign_in_sessions
     WHERE pool_id = $1 AND sid = $2 AND expires_at > $3"
);
/// The session a family was given in.
pub(crate) const SID_OF_FAMILY: &str =
    "SELECT sid FROM sign_in_grants WHERE pool_id = $1 AND origin_jti = $2";
/// The clients given tokens in a session.
pub(crate) const SIGN_IN_CLIENTS: &str = "SELECT DISTINCT client_id FROM sign_in_grants WHERE pool_id = $1 AND sid = $2 ORDER BY client_id";
/// The families given in a session.
pub(crate) const SIGN_IN_FAMILIES: &str =
    "SELECT origin_jti FROM sign_in_grants WHERE pool_id = $1 AND sid = $2";
/// Ends a live session `($1 pool, $2 sid, $3 now)` and returns it.
pub(crate) const SIGN_IN_END: &str = concat!(
    "UPDATE sign_in_sessions SET ended_at = $3
     WHERE pool_id = $1 AND sid = $2 AND ended_at IS NULL AND expires_at > $3
     RETURNING ",
    sign_in_columns!()
);
/// Ends a user's live sessions `($1 pool, $2 sub, $3 now)` and returns them.
pub(crate) const SIGN_INS_OF_USER_END: &str = concat!(
    "UPDATE sign_in_sessions SET ended_at = $3
     WHERE pool_id = $1 AND sub = $2 AND ended_at IS NULL AND expires_at > $3
     RETURNING ",
    sign_in_columns!()
);
/// What reading the end log at `($1 pool, $2 now)` forgets first: ends kept no longer, and
/// expired sessions with their grants.
pub(crate) const ENDS_SWEEP: [&str; 3] = [
    "DELETE FROM session_ends WHERE pool_id = $1 AND keep_until <= $2",
    "DELETE FROM sign_in_grants WHERE pool_id = $1 AND sid IN
     (SELECT sid FROM sign_in_sessions WHERE pool_id = $1 AND expires_at <= $2)",
    "DELETE FROM sign_in_sessions WHERE pool_id = $1 AND expires_at <= $2",
];
/// A pool's end log, oldest first.
pub(crate) const ENDS: &str =
    "SELECT sid, sub, ended_at FROM session_ends WHERE pool_id = $1 ORDER BY seq";
