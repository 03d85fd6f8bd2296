//! `bare-axum`: the throughput ceiling `just bench` compares `/users/me/` with.
//! One axum route answering the same JSON shape as `/users/me/`, with no
//! authentication, no database and no component, served the way the host
//! serves (tokio's multi-threaded runtime, HTTP/1.1). Prints its address as
//! "listening on http://…" once it accepts connections.

use axum::{Json, Router, routing::get};
use serde::Serialize;

#[derive(Serialize)]
struct UserOut {
    id: i64,
    email: String,
    is_active: bool,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new().route("/users/me/", get(me));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}

async fn me() -> Json<UserOut> {
    Json(UserOut { id: 1, email: "bench@example.com".into(), is_active: true })
}
