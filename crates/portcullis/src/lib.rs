//! Wiring: user pools and the load balancer started from one config, the demo, and the bundled
//! tasks app. `main.rs` is only the CLI over this.

pub mod admin_cli;
pub mod app;
pub mod demo;
pub mod tasks_app;
