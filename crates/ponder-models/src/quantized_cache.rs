//! `--quantized-cache DIR`: a checkpoint quantized at load is kept as a GGUF file, so the
//! next start loads it directly instead of quantizing again.
//!
//! The file's name carries a key: the SHA-256 of the checkpoint's files (names, sizes and
//! contents), the scheme and the cache format, so a changed checkpoint or another scheme never
//! finds a stale file. A file is written under a temporary name and renamed into place, so a
//! start that is killed while writing leaves no file that looks finished.

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::cpu::{write_quantized_gguf, QuantScheme};
use crate::{ModelError, Result};

/// Bumped when the files this cache writes change, so older ones are not taken.
const CACHE_FORMAT: u32 = 1;

/// A quantized GGUF file in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedGguf {
    /// The file.
    pub path: PathBuf,
    /// Whether this call wrote it (a miss); `false` when it was already there.
    pub written: bool,
}

/// The GGUF file of the Hugging Face directory `checkpoint` quantized with `scheme`, from
/// `cache_dir` (made if missing): found by its key, or quantized and written there first.
pub fn cached_quantized_gguf(checkpoint: &Path, scheme: QuantScheme, cache_dir: &Path) -> Result<CachedGguf> {
    let key = cache_key(checkpoint, scheme)?;
    let stem = checkpoint.file_name().map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    let path = cache_dir.join(format!("{stem}.{scheme}.{key}.gguf"));
    if path.is_file() {
        return Ok(CachedGguf { path, written: false });
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| ModelError::io(cache_dir, e))?;
    let partial = cache_dir.join(format!(".{stem}.{scheme}.{key}.gguf.partial-{}", std::process::id()));
    let written = write_quantized_gguf(checkpoint, scheme, &partial)
        .and_then(|_| std::fs::rename(&partial, &path).map_err(|e| ModelError::io(&path, e)));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    Ok(CachedGguf { path, written: true })
}

/// The first 16 hex digits of the SHA-256 over every file at the top of `checkpoint`
/// (sorted by name; hidden files skipped), the scheme and the cache format.
pub fn cache_key(checkpoint: &Path, scheme: QuantScheme) -> Result<String> {
    let entries = std::fs::read_dir(checkpoint).map_err(|e| ModelError::io(checkpoint, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file() && !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    // Files hash on all cores (a sharded checkpoint's shards at once), then in name order.
    let digests: Vec<(String, u64, Vec<u8>)> = files
        .par_iter()
        .map(|path| {
            let name = path.file_name().expect("listed files have names").to_string_lossy().into_owned();
            let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
            let mut contents = Sha256::new();
            let size = std::io::copy(&mut BufReader::with_capacity(1 << 20, file), &mut contents)
                .map_err(|e| ModelError::io(path, e))?;
            Ok((name, size, contents.finalize().to_vec()))
        })
        .collect::<Result<_>>()?;
    let mut hasher = Sha256::new();
    hasher.update(CACHE_FORMAT.to_le_bytes());
    hasher.update(scheme.name().as_bytes());
    for (name, size, digest) in digests {
        hasher.update([0]);
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(size.to_le_bytes());
        hasher.update(digest);
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(16);
    for byte in &digest[..8] {
        write!(hex, "{byte:02x}").expect("writing to a string");
    }
    Ok(hex)
}
