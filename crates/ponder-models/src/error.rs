//! Errors of model loading and running, each naming the file and field at fault.

use std::path::PathBuf;

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file the model needs is absent.
    #[error("{path}: missing ({what})")]
    MissingFile {
        /// The expected path.
        path: PathBuf,
        /// What the file is for.
        what: String,
    },
    /// A metadata or config field is absent.
    #[error("{file}: missing field `{field}` (expected {expected})")]
    MissingField {
        /// The file.
        file: PathBuf,
        /// The field name.
        field: String,
        /// What was expected there.
        expected: String,
    },
    /// A metadata or config field has the wrong type or an impossible value.
    #[error("{file}: field `{field}` is {found}, expected {expected}")]
    InvalidField {
        /// The file.
        file: PathBuf,
        /// The field name.
        field: String,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// The model's architecture is not one Ponder runs.
    #[error("{file}: unsupported architecture `{architecture}` (supported: llama, qwen2, qwen3)")]
    UnsupportedArchitecture {
        /// The file.
        file: PathBuf,
        /// The architecture named in the file.
        architecture: String,
    },
    /// A tensor is absent.
    #[error("{file}: missing tensor `{tensor}`")]
    MissingTensor {
        /// The file.
        file: PathBuf,
        /// The tensor name.
        tensor: String,
    },
    /// A tensor has the wrong shape or an unsupported element type.
    #[error("{file}: tensor `{tensor}`: {problem}")]
    BadTensor {
        /// The file.
        file: PathBuf,
        /// The tensor name.
        tensor: String,
        /// What is wrong.
        problem: String,
    },
    /// The file ends before the data it declares.
    #[error("{file}: truncated: {detail}")]
    Truncated {
        /// The file.
        file: PathBuf,
        /// What is missing.
        detail: String,
    },
    /// The file is not in the format it claims (bad magic, unknown tensor type, bad JSON).
    #[error("{file}: {detail}")]
    Format {
        /// The file.
        file: PathBuf,
        /// What could not be parsed.
        detail: String,
    },
    /// A model could not be fetched from the Hugging Face Hub.
    #[error("Hugging Face Hub, {repo}: {problem}")]
    Hub {
        /// The repository id.
        repo: String,
        /// What went wrong.
        problem: String,
    },
    /// The tokenizer could not be built or failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template could not be compiled or rendered.
    #[error("chat template: {0}")]
    Template(String),
    /// A batch passed to the model is inconsistent (a caller bug, reported instead of panicking).
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// A tensor operation failed.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Result of model operations.
pub type Result<T> = std::result::Result<T, ModelError>;

impl ModelError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io { path: path.into(), source }
    }
}
