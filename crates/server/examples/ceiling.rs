//! The ceiling for the load benchmark (scripts/bench-server): a trivial axum handler on the same
//! runtime setup as `asylon serve`, answering the same small JSON as `/api/health`.

use std::net::SocketAddr;

fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8090)));
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let app = axum::Router::new().route(
                "/api/health",
                axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
            );
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!("ceiling: serving http://{}", listener.local_addr()?);
            axum::serve(listener, app).await
        })
}
