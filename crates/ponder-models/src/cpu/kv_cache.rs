//! The CPU backend's KV cache: host memory, in `f32` or `f16`.

use half::f16;
use ponder_kernels::attention::{KvElement, KvLayout};

use crate::config::ModelConfig;
use crate::kv::BlockCopy;
use crate::Result;

/// The element type of the CPU backend's KV cache (`--kv-cache-dtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvDtype {
    /// 4 bytes an element: attention exactly as computed.
    F32,
    /// 2 bytes an element (llama.cpp's default): twice the tokens in the same memory, and half
    /// the bytes each decode step reads at depth, for keys and values rounded to 11 bits.
    #[default]
    F16,
}

impl KvDtype {
    /// Bytes of one element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            KvDtype::F32 => 4,
            KvDtype::F16 => 2,
        }
    }

    /// The name the flag takes: `f32` or `f16`.
    pub fn name(self) -> &'static str {
        match self {
            KvDtype::F32 => "f32",
            KvDtype::F16 => "f16",
        }
    }
}

impl std::str::FromStr for KvDtype {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" => Ok(KvDtype::F32),
            "f16" => Ok(KvDtype::F16),
            other => Err(format!("unknown KV cache type `{other}` (expected f16 or f32)")),
        }
    }
}

impl std::fmt::Display for KvDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One layer's keys and values, laid out as [`KvLayout`] says.
pub(crate) enum LayerKv {
    F32(Vec<f32>, Vec<f32>),
    F16(Vec<f16>, Vec<f16>),
}

impl LayerKv {
    fn zeroed(dtype: KvDtype, size: usize) -> Self {
        match dtype {
            KvDtype::F32 => LayerKv::F32(vec![0.0; size], vec![0.0; size]),
            KvDtype::F16 => LayerKv::F16(vec![f16::ZERO; size], vec![f16::ZERO; size]),
        }
    }

    fn copy_prefix(&mut self, layout: &KvLayout, copy: BlockCopy) {
        fn copy_in<E: KvElement>(keys: &mut [E], values: &mut [E], layout: &KvLayout, copy: BlockCopy) {
            layout.copy_prefix(keys, values, copy.src, copy.dst, copy.len);
        }
        match self {
            LayerKv::F32(keys, values) => copy_in(keys, values, layout, copy),
            LayerKv::F16(keys, values) => copy_in(keys, values, layout, copy),
        }
    }
}

/// KV cache in host memory: per layer, keys and values laid out as [`KvLayout`] says.
pub struct HostKvCache {
    pub(crate) layers: Vec<LayerKv>,
    pub(crate) layout: KvLayout,
    pub(crate) num_blocks: usize,
    dtype: KvDtype,
}

impl HostKvCache {
    /// `num_blocks` blocks of `block_size` tokens of `dtype` for every layer of `config`.
    pub fn new(config: &ModelConfig, num_blocks: usize, block_size: usize, dtype: KvDtype) -> Self {
        let layout = KvLayout { kv_heads: config.num_kv_heads, head_dim: config.head_dim, block_size };
        let size = num_blocks * layout.block_floats();
        let layers = (0..config.num_layers).map(|_| LayerKv::zeroed(dtype, size)).collect();
        Self { layers, layout, num_blocks, dtype }
    }

    /// Bytes one block takes across all layers, keys and values.
    pub fn bytes_per_block(config: &ModelConfig, block_size: usize, dtype: KvDtype) -> usize {
        2 * config.num_layers * block_size * config.kv_dim() * dtype.size_in_bytes()
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.layout.block_size
    }

    /// Number of blocks.
    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }

    /// The element type.
    pub fn dtype(&self) -> KvDtype {
        self.dtype
    }

    /// Copies the KV of the first `copy.len` slots of block `copy.src` into block `copy.dst`,
    /// in every layer.
    pub fn copy_block_prefix(&mut self, copy: BlockCopy) -> Result<()> {
        copy.check(self.layout.block_size, self.num_blocks)?;
        for layer in &mut self.layers {
            layer.copy_prefix(&self.layout, copy);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_types_parse_and_size() {
        assert_eq!("F16".parse::<KvDtype>(), Ok(KvDtype::F16));
        assert_eq!(" f32".parse::<KvDtype>(), Ok(KvDtype::F32));
        assert!("q4".parse::<KvDtype>().unwrap_err().contains("expected f16 or f32"));
        assert_eq!(KvDtype::F16.size_in_bytes() * 2, KvDtype::F32.size_in_bytes());
        assert_eq!(KvDtype::default().to_string(), "f16");
    }
}
