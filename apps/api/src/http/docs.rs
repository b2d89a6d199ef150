//! The API reference UI (Scalar) at `/docs`, served entirely from this binary:
//! the page and the vendored Scalar bundle (`apps/api/assets`), so it works
//! with no network access.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

const SCALAR_JS: &[u8] = include_bytes!("../../assets/scalar-api-reference-1.46.4.js");

const PAGE: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <title>IACE API reference</title>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
  </head>
  <body>
    <script id="api-reference" data-url="/openapi.json"></script>
    <script src="/docs/scalar.js"></script>
  </body>
</html>
"#;

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn script() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        SCALAR_JS,
    )
}

/// `/docs` and `/docs/scalar.js`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/docs", get(page))
        .route("/docs/scalar.js", get(script))
}
