//! The playground page at `/`: a chat that shows the thinking apart from the answer, marks
//! where budget forcing stepped in, and sets every budget control. Plain HTML, CSS and
//! JavaScript embedded in the binary (nothing fetched from elsewhere); it calls the same
//! `/v1/chat/completions` API as any client, with the caller's API key.
//!
//! Served read-only (GET and HEAD) under a Content-Security-Policy that lets the page load
//! only its own script and style and talk only to this server; the script writes model
//! output as text nodes, never as HTML.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// The page.
const INDEX_HTML: &str = include_str!("index.html");
/// Its script.
const APP_JS: &str = include_str!("app.js");
/// Its style sheet.
const APP_CSS: &str = include_str!("app.css");

/// The page's policy: its own script and style, requests to this origin, nothing framed,
/// no inline code, no plugins, no form posts elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's routes, for the router to merge (they need no API key: the page asks for one).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/playground/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/playground/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
