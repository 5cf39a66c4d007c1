//! Models named by a Hugging Face Hub id, downloaded into hf-hub's cache.
//!
//! A `--model` value that is not an existing path but reads `org/name`, optionally with
//! `@revision` and `:file.gguf` (`Qwen/Qwen2.5-0.5B-Instruct-GGUF:qwen2.5-0.5b-instruct-q4_k_m.gguf`),
//! names a Hub repository. A GGUF repository gives one file: the one named, the only `.gguf`
//! there, or the `Q4_K_M` one. Any other repository is a Hugging Face model directory: its
//! config, tokenizer files and safetensors are fetched into one snapshot folder, which then
//! loads like a local directory. `HF_ENDPOINT`, `HF_HOME` and `HF_TOKEN` work as in the
//! Python `huggingface_hub`.

use std::path::{Path, PathBuf};

use hf_hub::api::sync::{Api, ApiBuilder};
use hf_hub::{Repo, RepoType};

use crate::{ModelError, Result};

/// Files a Hugging Face model directory needs (besides its safetensors), and whether each
/// is required.
const DIRECTORY_FILES: [(&str, bool); 4] = [
    ("config.json", true),
    ("tokenizer.json", true),
    ("tokenizer_config.json", false),
    ("generation_config.json", false),
];

/// A model on the Hugging Face Hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubModel {
    /// `org/name`.
    pub repo: String,
    /// Branch, tag or commit; the default branch when absent.
    pub revision: Option<String>,
    /// One file of the repository (a GGUF file), when named.
    pub file: Option<String>,
}

/// A model ready to load: its local path, and the name to serve it under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    /// A GGUF file or a model directory on disk.
    pub path: PathBuf,
    /// The Hub id for downloaded models, else `None` (the file name is used).
    pub hub_id: Option<String>,
}

impl HubModel {
    /// Parses `org/name[@revision][:file]`; `None` when `spec` is not of that shape.
    pub fn parse(spec: &str) -> Option<Self> {
        let (rest, file) = match spec.split_once(':') {
            Some((rest, file)) if !file.is_empty() && !file.contains('/') => (rest, Some(file.to_string())),
            Some(_) => return None,
            None => (spec, None),
        };
        let (repo, revision) = match rest.split_once('@') {
            Some((repo, revision)) if !revision.is_empty() => (repo, Some(revision.to_string())),
            Some(_) => return None,
            None => (rest, None),
        };
        let (org, name) = repo.split_once('/')?;
        let valid = |part: &str| {
            !part.is_empty()
                && !part.starts_with('.')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        (valid(org) && valid(name)).then(|| Self { repo: repo.to_string(), revision, file })
    }

    /// Downloads the model with the Hub settings from the environment.
    pub fn download(&self) -> Result<PathBuf> {
        let api = ApiBuilder::from_env().with_progress(false).build().map_err(|e| self.error(e))?;
        self.download_with(&api)
    }

    /// Downloads the model from `endpoint` into `cache_dir` (for mirrors and tests).
    pub fn download_from(&self, endpoint: &str, cache_dir: &Path) -> Result<PathBuf> {
        let api = ApiBuilder::new()
            .with_endpoint(endpoint.to_string())
            .with_cache_dir(cache_dir.to_path_buf())
            .with_progress(false)
            .with_retries(0)
            .build()
            .map_err(|e| self.error(e))?;
        self.download_with(&api)
    }

    fn download_with(&self, api: &Api) -> Result<PathBuf> {
        let revision = self.revision.clone().unwrap_or_else(|| "main".to_string());
        let repo = api.repo(Repo::with_revision(self.repo.clone(), RepoType::Model, revision));
        let files = match &self.file {
            Some(file) => vec![file.clone()],
            None => {
                let info = repo.info().map_err(|e| self.error(e))?;
                let listing: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
                files_to_fetch(&listing).map_err(|problem| self.error(problem))?
            }
        };
        let mut first = None;
        for file in &files {
            tracing::info!(repo = %self.repo, file = %file, "downloading from the Hugging Face Hub");
            let path = repo.get(file).map_err(|e| self.error(format!("{file}: {e}")))?;
            first.get_or_insert(path);
        }
        let first = first.ok_or_else(|| self.error("nothing to download"))?;
        let is_gguf = files.len() == 1 && files[0].to_ascii_lowercase().ends_with(".gguf");
        Ok(if is_gguf { first } else { first.parent().map_or(first.clone(), Path::to_path_buf) })
    }

    fn error(&self, problem: impl std::fmt::Display) -> ModelError {
        ModelError::Hub { repo: self.repo.clone(), problem: problem.to_string() }
    }
}

/// Which files of a repository listing to fetch: one GGUF file (the only one, or the
/// `Q4_K_M` one), else a model directory's config, tokenizer and safetensors.
pub fn files_to_fetch(listing: &[String]) -> std::result::Result<Vec<String>, String> {
    let ggufs: Vec<&String> = listing.iter().filter(|f| f.to_ascii_lowercase().ends_with(".gguf")).collect();
    let safetensors: Vec<&String> = listing.iter().filter(|f| f.ends_with(".safetensors")).collect();
    if safetensors.is_empty() && !ggufs.is_empty() {
        let preferred: Vec<&String> =
            ggufs.iter().copied().filter(|f| f.to_ascii_lowercase().contains("q4_k_m")).collect();
        return match (ggufs.as_slice(), preferred.as_slice()) {
            ([only], _) | (_, [only]) => Ok(vec![only.to_string()]),
            _ => Err(format!(
                "the repository holds several GGUF files; name one as `org/name:FILE`: {}",
                ggufs.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
            )),
        };
    }
    if safetensors.is_empty() {
        return Err("the repository holds neither GGUF files nor safetensors".into());
    }
    let mut files = Vec::new();
    for (name, required) in DIRECTORY_FILES {
        let present = listing.iter().any(|f| f == name);
        if required && !present {
            return Err(format!("the repository has safetensors but no {name}"));
        }
        if present {
            files.push(name.to_string());
        }
    }
    if listing.iter().any(|f| f == "model.safetensors.index.json") {
        files.push("model.safetensors.index.json".into());
    }
    // Top-level weights only: subfolders hold other formats (e.g. `onnx/`, `original/`).
    files.extend(safetensors.into_iter().filter(|f| !f.contains('/')).cloned());
    Ok(files)
}

/// Resolves a `--model` value: an existing path as it is, else a Hub id, downloaded.
pub fn resolve_model(spec: &str) -> Result<ResolvedModel> {
    let path = Path::new(spec);
    if path.exists() {
        return Ok(ResolvedModel { path: path.to_path_buf(), hub_id: None });
    }
    match HubModel::parse(spec) {
        Some(hub) => Ok(ResolvedModel { path: hub.download()?, hub_id: Some(hub.repo) }),
        None => Err(ModelError::MissingFile {
            path: path.to_path_buf(),
            what: "a GGUF file, a Hugging Face model directory, or a Hub id `org/name[:file.gguf]`".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hub_ids_parse_with_revision_and_file() {
        assert_eq!(
            HubModel::parse("Qwen/Qwen3-0.6B"),
            Some(HubModel { repo: "Qwen/Qwen3-0.6B".into(), revision: None, file: None })
        );
        assert_eq!(
            HubModel::parse("org/name@v1.0:model-Q4_K_M.gguf"),
            Some(HubModel {
                repo: "org/name".into(),
                revision: Some("v1.0".into()),
                file: Some("model-Q4_K_M.gguf".into())
            })
        );
    }

    #[test]
    fn paths_and_malformed_ids_are_not_hub_ids() {
        for spec in [
            "model.gguf",
            "/models/model.gguf",
            "./org/name",
            "a/b/c",
            "org/",
            "/name",
            "org/name@",
            "org/name:",
            "org/na me",
            "../x",
        ] {
            assert_eq!(HubModel::parse(spec), None, "{spec}");
        }
    }

    #[test]
    fn a_single_gguf_or_the_q4_k_m_one_is_chosen() {
        assert_eq!(files_to_fetch(&names(&["README.md", "m-Q8_0.gguf"])).unwrap(), ["m-Q8_0.gguf"]);
        assert_eq!(files_to_fetch(&names(&["m-Q8_0.gguf", "m-q4_k_m.gguf", "m-f16.gguf"])).unwrap(), ["m-q4_k_m.gguf"]);
        let error = files_to_fetch(&names(&["m-Q8_0.gguf", "m-f16.gguf"])).unwrap_err();
        assert!(error.contains("m-Q8_0.gguf, m-f16.gguf"), "{error}");
    }

    #[test]
    fn a_directory_repository_fetches_config_tokenizer_and_shards() {
        let listing = names(&[
            ".gitattributes",
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "onnx/model.safetensors",
        ]);
        assert_eq!(
            files_to_fetch(&listing).unwrap(),
            [
                "config.json",
                "tokenizer.json",
                "tokenizer_config.json",
                "model.safetensors.index.json",
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors"
            ]
        );
        assert!(files_to_fetch(&names(&["model.safetensors", "tokenizer.json"])).unwrap_err().contains("config.json"));
        assert!(files_to_fetch(&names(&["README.md"])).is_err());
    }

    #[test]
    fn a_missing_path_that_is_no_hub_id_says_what_was_expected() {
        let error = resolve_model("/nonexistent/model.gguf").unwrap_err().to_string();
        assert!(error.contains("/nonexistent/model.gguf") && error.contains("Hub id"), "{error}");
    }
}
