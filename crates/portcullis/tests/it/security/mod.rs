//! The adversarial suite (issue 10): each module attacks one class of weakness against real
//! servers on port 0, and each test fails on the code before its fix.

/// The balancer: upgrades, reserved headers, credential cookies, stickiness, the relying party.
mod balancer;
/// The balancer's own HTTP/1.1 codec (issue 11) attacked from outside: smuggling, response
/// desync, exhaustion, upgrades.
mod codec;
/// A hostile external identity provider (federation): forged ID tokens, odd subjects, account
/// takeover by name, unmapped attributes, login CSRF and replayed state.
mod federation;
/// One-time secrets (codes, TOTP), attribute verification and account enumeration.
mod one_time_secrets;
/// Guessing passwords: the lockout under concurrency, load shedding, rate limits, hashing memory.
mod passwords;
/// The identity provider's protocol surface: PKCE, implicit nonce, refresh reuse, SigV4.
mod protocol;
/// Findings of an outside review (path normalisation against path-pattern rules, ...).
mod review;
/// Findings of an outside review of federation: federated users and passwords, the admin's
/// reach, the mix-up defence, stale verification, name squatting.
mod review_federation;
/// Findings of an outside review of the identity provider (enumeration, code sending, ...).
mod review_idp;
/// Findings of an outside review of sign-in sessions and instant revocation: forged `NOTIFY`
/// ends, the revocation set's cap, back-channel logout.
mod review_revocation;
/// Transport and files: TLS on the pool's domain, `state_dir` permissions.
mod transport;
