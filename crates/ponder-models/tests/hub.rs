//! Hub downloads against a local fake of the Hugging Face Hub's HTTP API: the repository
//! listing (`/api/models/{repo}/revision/{rev}`) and file downloads
//! (`/{repo}/resolve/{rev}/{file}` with `Range`), as `huggingface.co` answers them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ponder_models::{HubModel, ModelError};

/// Repositories by id, each a map from file name to contents.
type Repos = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// A fake Hub on a free local port; records the paths it was asked for.
struct FakeHub {
    endpoint: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeHub {
    fn start(repos: Repos) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut range = None;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                        break;
                    }
                    let lower = header.to_ascii_lowercase();
                    if let Some(spec) = lower.strip_prefix("range: bytes=") {
                        let (start, end) = spec.trim().split_once('-').unwrap_or(("0", ""));
                        range = Some((start.parse::<usize>().unwrap_or(0), end.parse::<usize>().ok()));
                    }
                }
                log.lock().unwrap().push(path.clone());
                let response = answer(&repos, &path, range);
                let _ = stream.write_all(&response);
            }
        });
        Self { endpoint, requests }
    }

    fn requested(&self, needle: &str) -> bool {
        self.requests.lock().unwrap().iter().any(|p| p.contains(needle))
    }
}

/// Answers one request; `range` is a `Range: bytes=START-[END]` header (END inclusive).
fn answer(repos: &Repos, path: &str, range: Option<(usize, Option<usize>)>) -> Vec<u8> {
    let commit = "0123456789abcdef0123456789abcdef01234567";
    if let Some(rest) = path.strip_prefix("/api/models/") {
        if let Some((repo, _revision)) = rest.split_once("/revision/") {
            if let Some(files) = repos.get(repo) {
                let siblings: Vec<_> = files.keys().map(|f| serde_json::json!({ "rfilename": f })).collect();
                let body = serde_json::json!({ "sha": commit, "siblings": siblings }).to_string();
                return http(200, &[("Content-Type", "application/json".into())], body.as_bytes());
            }
        }
        return http(404, &[], br#"{"error":"Repository not found"}"#);
    }
    for (repo, files) in repos {
        let Some(rest) = path.strip_prefix(&format!("/{repo}/resolve/")) else { continue };
        let Some((_revision, file)) = rest.split_once('/') else { continue };
        let Some(bytes) = files.get(file) else { break };
        let (start, last) = range.unwrap_or((0, None));
        let end = last.map_or(bytes.len(), |last| last + 1).min(bytes.len());
        let start = start.min(end);
        let body = &bytes[start..end];
        let headers = [
            ("ETag", format!("\"etag-{repo}-{file}\"").replace('/', "-")),
            ("X-Repo-Commit", commit.into()),
            ("Content-Range", format!("bytes {start}-{}/{}", end.saturating_sub(1), bytes.len())),
        ];
        return http(206, &headers, body);
    }
    http(404, &[], b"Entry not found")
}

fn http(status: u16, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn repo(files: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
    files.iter().map(|(name, bytes)| (name.to_string(), bytes.to_vec())).collect()
}

fn fake_hub() -> FakeHub {
    let mut repos = Repos::new();
    repos.insert(
        "org/dense".into(),
        repo(&[
            ("config.json", b"{\"model_type\":\"qwen2\"}"),
            ("tokenizer.json", b"{\"tokenizer\":true}"),
            ("model-00001-of-00002.safetensors", &[1u8; 300]),
            ("model-00002-of-00002.safetensors", &[2u8; 200]),
            ("model.safetensors.index.json", b"{\"weight_map\":{}}"),
            ("onnx/model.safetensors", &[9u8; 50]),
            ("README.md", b"# readme"),
        ]),
    );
    repos.insert(
        "org/quants-GGUF".into(),
        repo(&[
            ("model-q8_0.gguf", b"GGUF q8"),
            ("model-q4_k_m.gguf", b"GGUF q4_k_m"),
            ("model-f16.gguf", b"GGUF f16"),
        ]),
    );
    FakeHub::start(repos)
}

#[test]
fn a_directory_repository_downloads_into_one_snapshot_folder() {
    let hub = fake_hub();
    let cache = tempfile::tempdir().unwrap();
    let model = HubModel::parse("org/dense").unwrap();
    let dir = model.download_from(&hub.endpoint, cache.path()).unwrap();

    assert!(dir.is_dir(), "{}", dir.display());
    assert_eq!(std::fs::read(dir.join("config.json")).unwrap(), b"{\"model_type\":\"qwen2\"}");
    assert_eq!(std::fs::read(dir.join("model-00001-of-00002.safetensors")).unwrap(), vec![1u8; 300]);
    assert_eq!(std::fs::read(dir.join("model-00002-of-00002.safetensors")).unwrap(), vec![2u8; 200]);
    assert!(dir.join("model.safetensors.index.json").is_file());
    assert!(!dir.join("README.md").exists());
    assert!(!hub.requested("onnx/"), "subfolder weights are not fetched");
}

#[test]
fn a_gguf_repository_gives_the_named_or_the_q4_k_m_file_and_is_cached() {
    let hub = fake_hub();
    let cache = tempfile::tempdir().unwrap();
    let chosen = HubModel::parse("org/quants-GGUF").unwrap().download_from(&hub.endpoint, cache.path()).unwrap();
    assert_eq!(chosen.file_name().unwrap(), "model-q4_k_m.gguf");
    assert_eq!(std::fs::read(&chosen).unwrap(), b"GGUF q4_k_m");

    let named = HubModel::parse("org/quants-GGUF:model-q8_0.gguf").unwrap();
    let path = named.download_from(&hub.endpoint, cache.path()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"GGUF q8");

    // A second resolve of a named file comes from the cache: a dead endpoint is never asked.
    let again = named.download_from("http://127.0.0.1:9", cache.path()).unwrap();
    assert_eq!(again, path);
}

#[test]
fn a_missing_repository_or_file_is_a_hub_error_naming_the_repository() {
    let hub = fake_hub();
    let cache = tempfile::tempdir().unwrap();
    for spec in ["org/nothing-here", "org/quants-GGUF:absent.gguf"] {
        let err = HubModel::parse(spec).unwrap().download_from(&hub.endpoint, cache.path()).unwrap_err();
        assert!(matches!(err, ModelError::Hub { .. }), "{spec}: {err:?}");
        let repo = spec.split(':').next().unwrap();
        assert!(err.to_string().contains(repo), "{err}");
    }
    assert!(!Path::new(&cache.path().join("models--org--nothing-here/snapshots")).exists());
}
