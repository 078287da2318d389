//! The integration tests: one binary (issue 12), one module per area. Each test starts real
//! servers on port 0 through `kit`, so tests run in parallel (nextest: one process each).

/// Starts real servers for a test and signs in through them.
mod kit;

mod admin_api;
mod browser;
mod cli;
mod client_connections;
mod conditions;
mod desync;
mod draining;
mod federation;
mod health_checks;
mod hosted_ui_session;
mod hostile_input;
mod http2_and_shutdown;
mod identity_jwt;
mod interop;
mod jwt_validation;
mod key_rotation;
mod lambda_targets;
mod metrics;
mod mfa;
mod multi_node;
mod oidc_provider;
mod pool_lookaround;
mod reload;
mod revocation;
mod revocation_nodes;
mod routing_and_errors;
mod security;
mod seed_scenario;
mod sign_in_sessions;
mod size_limits;
mod smtp;
mod target_protocols;
mod target_selection;
mod verifier_library;
mod websocket_and_post;
mod weighted_and_sticky;
