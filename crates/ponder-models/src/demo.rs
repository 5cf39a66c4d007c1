//! Where the demo model lives once `scripts/fetch-demo-model.sh` has fetched it.

use std::path::PathBuf;

/// File name of the demo model (Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M).
pub const DEMO_MODEL_FILE: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";

/// The demo model's path: `$PONDER_DEMO_MODEL`, else `$PONDER_CACHE/models/<file>` (the cache
/// defaults to `~/.cache/ponder`). The file may not exist yet.
pub fn demo_model_path() -> PathBuf {
    if let Ok(path) = std::env::var("PONDER_DEMO_MODEL") {
        return PathBuf::from(path);
    }
    let cache = std::env::var("PONDER_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into())).join(".cache/ponder"));
    cache.join("models").join(DEMO_MODEL_FILE)
}

/// The demo model's path, or a panic telling how to fetch it (for tests).
pub fn require_demo_model() -> PathBuf {
    let path = demo_model_path();
    assert!(path.is_file(), "demo model missing at {}: run scripts/fetch-demo-model.sh", path.display());
    path
}
