//! A backend behind Portcullis (or an ALB) that trusts nothing but verified headers.
//!
//! ```sh
//! SIGNER_ARN=arn:aws:elasticloadbalancing:... KEYS=http://127.0.0.1:9100 CLIENT_ID=tasks-web \
//! JWKS=http://localhost:9000/us-east-1_X/.well-known/jwks.json ISSUER=http://localhost:9000/us-east-1_X \
//!   cargo run -p portcullis-verify --features axum --example axum_backend
//! ```
//! `KEYS` is Portcullis's admin URL; for a real ALB give `AWS_REGION` instead.

use axum::Router;
use axum::routing::get;
use portcullis_verify::{AlbVerifier, Identity, KeySource, Rejection, Verifier};
use std::sync::Arc;

async fn whoami(who: Identity) -> String {
    format!(
        "{} ({}) in {:?}\n",
        who.sub,
        who.claim("email").unwrap_or("-"),
        who.groups
    )
}

async fn reader(who: Identity) -> Result<String, Rejection> {
    who.require_scope("tasks/read")?;
    Ok(format!("{} may read tasks\n", who.sub))
}

#[tokio::main]
async fn main() {
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("set {k}"));
    let keys = match std::env::var("AWS_REGION") {
        Ok(region) => KeySource::Aws(region),
        Err(_) => KeySource::Portcullis(env("KEYS")),
    };
    let verifier = Verifier::new(
        AlbVerifier::new(env("SIGNER_ARN")).expect_client(env("CLIENT_ID")),
        keys,
    )
    .with_access_tokens(&env("JWKS"), &env("ISSUER"));
    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/tasks", get(reader))
        .with_state(Arc::new(verifier));
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let tcp = tokio::net::TcpListener::bind(&listen).await.expect("bind");
    println!("listening on http://{listen}");
    axum::serve(tcp, app).await.expect("serve");
}
