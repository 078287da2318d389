//! The tables both stores keep, in migration order, written once: each backend names its own
//! column types (SQLite's `INTEGER` and `BLOB`, PostgreSQL's `BIGINT`, `BOOLEAN` and `BYTEA`) and
//! records how many migrations have run in its own way.

/// Every migration, oldest first, as an array of SQL batches. `int`, `flag` (with `no` for false)
/// and `bytes` are the backend's column types; `buckets` is appended to the migration that adds
/// password checks in flight (PostgreSQL keeps its rate-limit buckets there); `serial` is the
/// end log's sequence column.
macro_rules! migrations {
    (
        int: $int:literal,
        flag: $flag:literal,
        no: $no:literal,
        bytes: $bytes:literal,
        buckets: $buckets:literal,
        serial: $serial:literal $(,)?
    ) => {
        [
            // 1: client secrets, users, codes, refresh tokens, signing keys.
            concat!(
                "
CREATE TABLE client_secrets (
  pool_id TEXT NOT NULL, client_id TEXT NOT NULL, secret TEXT NOT NULL,
  PRIMARY KEY (pool_id, client_id));
CREATE TABLE users (
  sub TEXT PRIMARY KEY, pool_id TEXT NOT NULL, username TEXT NOT NULL, password_hash TEXT NOT NULL,
  status TEXT NOT NULL, enabled ",
                $flag,
                " NOT NULL, attributes TEXT NOT NULL,
  created_at ",
                $int,
                " NOT NULL, updated_at ",
                $int,
                " NOT NULL,
  UNIQUE (pool_id, username));
CREATE TABLE auth_codes (
  code_hash TEXT PRIMARY KEY, pool_id TEXT NOT NULL, client_id TEXT NOT NULL, sub TEXT NOT NULL,
  redirect_uri TEXT NOT NULL, scope TEXT NOT NULL, nonce TEXT, code_challenge TEXT,
  auth_time ",
                $int,
                " NOT NULL, expires_at ",
                $int,
                " NOT NULL, used ",
                $flag,
                " NOT NULL DEFAULT ",
                $no,
                ");
CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY, pool_id TEXT NOT NULL, client_id TEXT NOT NULL, sub TEXT NOT NULL,
  scope TEXT NOT NULL, auth_time ",
                $int,
                " NOT NULL, origin_jti TEXT NOT NULL,
  expires_at ",
                $int,
                " NOT NULL, revoked ",
                $flag,
                " NOT NULL DEFAULT ",
                $no,
                ");
CREATE INDEX refresh_tokens_origin ON refresh_tokens (pool_id, origin_jti);
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY, pool_id TEXT NOT NULL, purpose TEXT NOT NULL, generation ",
                $int,
                " NOT NULL,
  pkcs8 ",
                $bytes,
                " NOT NULL, created_at ",
                $int,
                " NOT NULL,
  UNIQUE (pool_id, purpose, generation));
"
            ),
            // 2: hosted-UI sessions.
            concat!(
                "
CREATE TABLE sessions (
  id_hash TEXT PRIMARY KEY, pool_id TEXT NOT NULL, sub TEXT NOT NULL,
  auth_time ",
                $int,
                " NOT NULL, expires_at ",
                $int,
                " NOT NULL);
"
            ),
            // 3: failed sign-ins (lockout).
            concat!(
                "
CREATE TABLE sign_in_failures (
  pool_id TEXT NOT NULL, username TEXT NOT NULL, failures ",
                $int,
                " NOT NULL,
  last_failure ",
                $int,
                " NOT NULL, locked_until ",
                $int,
                " NOT NULL,
  PRIMARY KEY (pool_id, username));
"
            ),
            // 4: groups and their members.
            concat!(
                "
CREATE TABLE user_groups (
  pool_id TEXT NOT NULL, name TEXT NOT NULL, precedence ",
                $int,
                ", description TEXT,
  PRIMARY KEY (pool_id, name));
CREATE TABLE group_members (
  pool_id TEXT NOT NULL, group_name TEXT NOT NULL, sub TEXT NOT NULL,
  PRIMARY KEY (pool_id, group_name, sub));
CREATE INDEX group_members_sub ON group_members (pool_id, sub);
"
            ),
            // 5: the admin API's documents and one-time tickets.
            "
CREATE TABLE pool_objects (
  pool_id TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  PRIMARY KEY (pool_id, kind, id));
CREATE TABLE tickets (
  pool_id TEXT NOT NULL, purpose TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  expires_at BIGINT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (pool_id, purpose, key));
",
            // 6: replay detection: when a rotated refresh token's retry grace period ends (NULL:
            // not rotated), the token family a redeemed code started (so a replayed code revokes
            // it), and revoked families (marked even before their first refresh token is stored).
            "
ALTER TABLE refresh_tokens ADD COLUMN retired_until BIGINT;
ALTER TABLE auth_codes ADD COLUMN origin_jti TEXT;
CREATE TABLE revoked_families (
  pool_id TEXT NOT NULL, origin_jti TEXT NOT NULL, revoked_at BIGINT NOT NULL,
  PRIMARY KEY (pool_id, origin_jti));
",
            // 7: password checks in flight.
            concat!(
                "ALTER TABLE sign_in_failures ADD COLUMN busy_until BIGINT NOT NULL DEFAULT 0;",
                $buckets
            ),
            // 8: sign-in sessions, the families given in them, and the log of ends.
            concat!(
                r#"
CREATE TABLE sign_in_sessions (
  pool_id TEXT NOT NULL, sid TEXT NOT NULL, sub TEXT NOT NULL, started_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL, ended_at BIGINT,
  PRIMARY KEY (pool_id, sid));
CREATE INDEX sign_in_sessions_sub ON sign_in_sessions (pool_id, sub);
CREATE INDEX sign_in_sessions_expiry ON sign_in_sessions (pool_id, expires_at);
CREATE TABLE sign_in_grants (
  pool_id TEXT NOT NULL, origin_jti TEXT NOT NULL, sid TEXT NOT NULL, client_id TEXT NOT NULL,
  PRIMARY KEY (pool_id, origin_jti));
CREATE INDEX sign_in_grants_sid ON sign_in_grants (pool_id, sid);
CREATE TABLE session_ends (
  seq "#,
                $serial,
                r#", pool_id TEXT NOT NULL, sid TEXT, sub TEXT NOT NULL, ended_at BIGINT NOT NULL,
  keep_until BIGINT NOT NULL, node TEXT NOT NULL, noted_ms BIGINT NOT NULL);
CREATE INDEX session_ends_keep ON session_ends (pool_id, keep_until);
CREATE INDEX session_ends_noted ON session_ends (noted_ms);
"#
            ),
        ]
    };
}
pub(crate) use migrations;
