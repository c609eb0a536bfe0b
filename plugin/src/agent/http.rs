//! The agent's HTTP endpoints: `/metrics` (Prometheus), `/healthz` (the
//! reconcile loop is alive: it finished a pass within three intervals) and
//! `/readyz` (the node is set up and the last pass succeeded; the body says
//! why not).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{metrics, Shared};

pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(shared);
    if let Err(e) = axum::serve(listener, app).await {
        log::error!("the HTTP server stopped: {e}");
    }
}

async fn metrics_page(State(shared): State<Arc<Shared>>) -> Response {
    let state_dir = shared.health().state_dir;
    match metrics::render(state_dir.as_deref(), &shared.ops) {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let since = shared.health().last_pass.elapsed();
    if since > shared.interval * 3 + std::time::Duration::from_secs(30) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the reconcile loop has not finished a pass for {since:?}\n"),
        )
            .into_response()
    } else {
        "ok\n".into_response()
    }
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    match shared.health().ready {
        Ok(()) => "ready\n".into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}
