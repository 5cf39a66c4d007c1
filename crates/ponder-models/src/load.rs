//! Loading a model from a path: a GGUF file or a Hugging Face directory.

use std::path::{Path, PathBuf};

use candle_core::Device;
use serde_json::Value;

use crate::chat_template::ChatTemplate;
use crate::config::ModelConfig;
use crate::gguf::GgufFile;
use crate::hf::{read_json, HfDirectory};
use crate::model::Model;
use crate::tokenizer::Tokenizer;
use crate::weights::{WeightName, WeightSource};
use crate::{ModelError, Result};

/// What a model path holds besides its weights: shape, tokenizer, chat template.
pub struct ModelMetadata {
    /// The model's shape.
    pub config: ModelConfig,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// The model's chat template, if it ships one.
    pub chat_template: Option<ChatTemplate>,
    /// A name for the model (the file or directory name).
    pub name: String,
    /// Where it was loaded from.
    pub path: PathBuf,
}

impl ModelMetadata {
    /// Reads a GGUF file's header, or a directory's `config.json` and tokenizer files,
    /// without loading weights.
    pub fn load(path: &Path) -> Result<Self> {
        let (config, tokenizer, template) = match model_kind(path)? {
            ModelKind::Gguf => {
                let mut gguf = GgufFile::open(path, &Device::Cpu)?;
                let config = gguf_config(&mut gguf, path)?;
                (config, Tokenizer::from_gguf(&gguf)?, gguf.chat_template())
            }
            ModelKind::HfDirectory => {
                let config = HfDirectory::open(path, &Device::Cpu)?.config()?;
                config.validate(&path.join("config.json"))?;
                (config, Tokenizer::from_hf_dir(path)?, hf_chat_template(path)?)
            }
        };
        let chat_template = template
            .map(|source| ChatTemplate::new(&source, tokenizer.bos_text(), tokenizer.eos_text()))
            .transpose()?;
        Ok(Self { config, tokenizer, chat_template, name: file_name(path), path: path.into() })
    }

    /// The name a model at `path` goes by: its file or directory name, without `.gguf`.
    pub fn name_of(path: &Path) -> String {
        file_name(path)
    }

    /// Loads the weights onto `device`.
    pub fn load_weights(&self, device: &Device) -> Result<Model> {
        match model_kind(&self.path)? {
            ModelKind::Gguf => Model::load(&mut GgufFile::open(&self.path, device)?, &self.config, device),
            ModelKind::HfDirectory => Model::load(&mut HfDirectory::open(&self.path, device)?, &self.config, device),
        }
    }
}

/// Everything loaded from one model path.
pub struct LoadedModel {
    /// The weights, ready to run.
    pub model: Model,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// The model's chat template, if it ships one.
    pub chat_template: Option<ChatTemplate>,
    /// A name for the model (the file or directory name).
    pub name: String,
    /// Where it was loaded from.
    pub path: PathBuf,
}

impl LoadedModel {
    /// Loads a GGUF file, or a directory with `config.json`, `*.safetensors` and
    /// `tokenizer.json`.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let metadata = ModelMetadata::load(path)?;
        let model = metadata.load_weights(device)?;
        let ModelMetadata { tokenizer, chat_template, name, path, .. } = metadata;
        Ok(Self { model, tokenizer, chat_template, name, path })
    }

    /// The model's shape.
    pub fn config(&self) -> &ModelConfig {
        self.model.config()
    }
}

enum ModelKind {
    Gguf,
    HfDirectory,
}

fn model_kind(path: &Path) -> Result<ModelKind> {
    if path.is_dir() {
        Ok(ModelKind::HfDirectory)
    } else if path.is_file() {
        Ok(ModelKind::Gguf)
    } else {
        Err(ModelError::MissingFile { path: path.into(), what: "model (a GGUF file or a model directory)".into() })
    }
}

fn gguf_config(gguf: &mut GgufFile, path: &Path) -> Result<ModelConfig> {
    let mut config = gguf.config()?;
    if gguf.contains(WeightName::RopeFreqs) {
        config.rope.freq_factors = Some(gguf.vector(WeightName::RopeFreqs)?.to_vec1()?);
    }
    config.validate(path)?;
    Ok(config)
}

/// The template from `chat_template.jinja`, or `chat_template` in `tokenizer_config.json`
/// (a string, or a list of named templates of which `default` is used).
fn hf_chat_template(dir: &Path) -> Result<Option<String>> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.is_file() {
        return std::fs::read_to_string(&jinja).map(Some).map_err(|e| ModelError::io(&jinja, e));
    }
    let config_path = dir.join("tokenizer_config.json");
    if !config_path.is_file() {
        return Ok(None);
    }
    let config = read_json(&config_path, "tokenizer config")?;
    Ok(match config.get("chat_template") {
        Some(Value::String(source)) => Some(source.clone()),
        Some(Value::Array(named)) => named
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str)
            .map(String::from),
        _ => None,
    })
}

fn file_name(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.strip_suffix(".gguf").map(String::from).unwrap_or(name)
}
