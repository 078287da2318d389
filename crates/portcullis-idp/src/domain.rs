//! The identity provider's logic, free of HTTP: pools and their clients, accounts, MFA, tokens,
//! sign-in sessions, federation and the limits on guessing. The front-ends (`http`, `admin_api`)
//! call into it.

pub mod accounts;
pub mod admission;
pub mod authorize;
pub mod backchannel;
pub mod catalog;
pub mod claims;
pub mod directory;
pub mod external_sign_in;
pub mod federation;
pub mod grants;
pub mod groups;
pub mod hashing;
pub mod messages;
pub mod mfa;
pub mod pool;
pub mod pool_description;
pub mod rate_limit;
pub mod revocation;
pub mod scopes;
pub mod secrets;
pub mod sessions;
pub mod tokens;
