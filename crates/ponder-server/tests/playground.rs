//! The playground page: served at `/` read-only, under a strict Content-Security-Policy,
//! with no API key (the page asks for one), its script and style from this server only, and
//! off with `--no-playground`.

mod common;

use common::*;
use ponder_engine::EngineConfig;

/// GET (or another method) of `path`: status, the headers asked for, body.
fn fetch(server: &TestServer, method: reqwest::Method, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    server.block_on(async {
        let response = reqwest::Client::new().request(method, format!("{}{path}", server.base)).send().await.unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, headers, response.text().await.unwrap())
    })
}

#[test]
fn the_page_and_its_files_are_served_under_a_strict_policy_without_a_key() {
    let server = fake_server(letters, EngineConfig::default(), |c| c.api_keys = vec!["secret".into()]);
    let (status, headers, html) = fetch(&server, reqwest::Method::GET, "/");
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let policy = headers["content-security-policy"].to_str().unwrap();
    for directive in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "{policy}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    // Everything the page loads comes from this server, and nothing is inline.
    assert!(!html.contains("http://") && !html.contains("https://"), "no remote resources");
    assert!(!html.contains("<script>") && !html.contains("<style") && !html.contains(" onclick"), "no inline code");
    for (path, kind) in [("/playground/app.js", "text/javascript"), ("/playground/app.css", "text/css")] {
        assert!(html.contains(path), "the page loads {path}");
        let (status, headers, body) = fetch(&server, reqwest::Method::GET, path);
        assert_eq!(status, 200, "{path}");
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        assert!(!body.contains("http://") && !body.contains("https://"), "{path} fetches nothing from elsewhere");
    }
    // Model output is written as text, never parsed as HTML.
    let (_, _, script) = fetch(&server, reqwest::Method::GET, "/playground/app.js");
    for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
        assert!(!script.contains(sink), "the script uses {sink}");
    }
    // Every control has a label.
    for id in [
        "prompt",
        "thinking-on",
        "min-tokens",
        "max-tokens-thinking",
        "continuation",
        "answer-reserve",
        "temperature",
        "top-p",
        "max-tokens",
        "seed",
        "system",
        "schema",
        "tools",
        "api-key",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        let labelled = html.contains(&format!("for=\"{id}\"")) || id == "thinking-on";
        assert!(labelled, "a label for {id}");
    }
}

#[test]
fn the_page_is_read_only() {
    let server = simple_server(letters);
    let (status, _, body) = fetch(&server, reqwest::Method::HEAD, "/");
    assert_eq!((status, body.as_str()), (200, ""));
    for method in [reqwest::Method::POST, reqwest::Method::PUT, reqwest::Method::DELETE] {
        let (status, _, body) = fetch(&server, method.clone(), "/playground/app.js");
        assert_eq!(status, 405, "{method}");
        assert!(body.contains("\"error\""), "{method}: an API-shaped error: {body}");
    }
}

#[test]
fn no_playground_leaves_the_root_unserved() {
    let server = fake_server(letters, EngineConfig::default(), |c| c.playground = false);
    assert_eq!(server.get("/").0, 404);
    assert_eq!(server.get("/playground/app.js").0, 404);
    assert_eq!(server.get("/health").0, 200);
}
