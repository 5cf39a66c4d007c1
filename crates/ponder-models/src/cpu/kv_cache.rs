//! The CPU backend's KV cache: host memory, in `f32`, `f16` or 8 bits (`q8_0`).

use half::f16;
use ponder_kernels::attention::{quantize_q8, KvElement, KvLayout, KvViewQ8, Q8_GROUP};

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
    /// 8 bits an element and an f16 scale per 32 (llama.cpp's `q8_0`, 1.0625 bytes an
    /// element): nearly twice the tokens of `f16` again. Needs heads of whole 32-element groups.
    Q8_0,
}

impl KvDtype {
    /// Every type, in the order the flag lists them.
    pub const ALL: [KvDtype; 3] = [KvDtype::F16, KvDtype::F32, KvDtype::Q8_0];

    /// Bytes of `elements` elements (for `q8_0`, a whole number of 32-element groups).
    pub fn bytes(self, elements: usize) -> usize {
        match self {
            KvDtype::F32 => 4 * elements,
            KvDtype::F16 => 2 * elements,
            KvDtype::Q8_0 => elements + elements / Q8_GROUP * 2,
        }
    }

    /// Whether a model with heads of `head_dim` elements can keep its cache in this type.
    pub fn fits_head_dim(self, head_dim: usize) -> bool {
        self != KvDtype::Q8_0 || head_dim.is_multiple_of(Q8_GROUP)
    }

    /// The name the flag takes: `f32`, `f16` or `q8_0`.
    pub fn name(self) -> &'static str {
        match self {
            KvDtype::F32 => "f32",
            KvDtype::F16 => "f16",
            KvDtype::Q8_0 => "q8_0",
        }
    }
}

impl std::str::FromStr for KvDtype {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|dtype| dtype.name() == wanted)
            .ok_or_else(|| format!("unknown KV cache type `{}` (expected f16, f32 or q8_0)", s.trim()))
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
    Q8(Q8Layer),
}

/// One layer's 8-bit keys and values, their scales, and the buffers one token is quantized in.
pub(crate) struct Q8Layer {
    keys: Vec<i8>,
    values: Vec<i8>,
    key_scales: Vec<f16>,
    value_scales: Vec<f16>,
    token: (Vec<i8>, Vec<i8>, Vec<f16>, Vec<f16>),
}

impl Q8Layer {
    /// The cache as the attention kernels read it.
    pub fn view(&self, layout: KvLayout) -> KvViewQ8<'_> {
        KvViewQ8 {
            keys: &self.keys,
            values: &self.values,
            key_scales: &self.key_scales,
            value_scales: &self.value_scales,
            layout,
        }
    }
}

impl LayerKv {
    fn zeroed(dtype: KvDtype, layout: &KvLayout, num_blocks: usize) -> Self {
        let size = num_blocks * layout.block_floats();
        match dtype {
            KvDtype::F32 => LayerKv::F32(vec![0.0; size], vec![0.0; size]),
            KvDtype::F16 => LayerKv::F16(vec![f16::ZERO; size], vec![f16::ZERO; size]),
            KvDtype::Q8_0 => {
                let scales = num_blocks * layout.q8_scales().block_floats();
                let kv_dim = layout.kv_heads * layout.head_dim;
                LayerKv::Q8(Q8Layer {
                    keys: vec![0; size],
                    values: vec![0; size],
                    key_scales: vec![f16::ZERO; scales],
                    value_scales: vec![f16::ZERO; scales],
                    token: (
                        vec![0; kv_dim],
                        vec![0; kv_dim],
                        vec![f16::ZERO; kv_dim / Q8_GROUP],
                        vec![f16::ZERO; kv_dim / Q8_GROUP],
                    ),
                })
            }
        }
    }

    /// Writes one token's keys and values (`kv_heads × head_dim` each) into slot `offset` of
    /// block `block`.
    pub fn store(&mut self, layout: &KvLayout, block: u32, offset: usize, k: &[f32], v: &[f32]) {
        match self {
            LayerKv::F32(keys, values) => layout.store(keys, values, block, offset, k, v, f32::from_f32),
            LayerKv::F16(keys, values) => layout.store(keys, values, block, offset, k, v, f16::from_f32),
            LayerKv::Q8(q8) => {
                let (qk, qv, sk, sv) = &mut q8.token;
                quantize_q8(k, qk, sk);
                quantize_q8(v, qv, sv);
                layout.store(&mut q8.keys, &mut q8.values, block, offset, qk, qv, |x| x);
                layout.q8_scales().store(&mut q8.key_scales, &mut q8.value_scales, block, offset, sk, sv, |x| x);
            }
        }
    }

    fn copy_prefix(&mut self, layout: &KvLayout, copy: BlockCopy) {
        let BlockCopy { src, dst, len } = copy;
        match self {
            LayerKv::F32(keys, values) => layout.copy_prefix(keys, values, src, dst, len),
            LayerKv::F16(keys, values) => layout.copy_prefix(keys, values, src, dst, len),
            LayerKv::Q8(q8) => {
                layout.copy_prefix(&mut q8.keys, &mut q8.values, src, dst, len);
                layout.q8_scales().copy_prefix(&mut q8.key_scales, &mut q8.value_scales, src, dst, len);
            }
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
    /// Panics if `dtype` does not fit the model's heads ([`KvDtype::fits_head_dim`]).
    pub fn new(config: &ModelConfig, num_blocks: usize, block_size: usize, dtype: KvDtype) -> Self {
        let layout = KvLayout { kv_heads: config.num_kv_heads, head_dim: config.head_dim, block_size };
        let layers = (0..config.num_layers).map(|_| LayerKv::zeroed(dtype, &layout, num_blocks)).collect();
        Self { layers, layout, num_blocks, dtype }
    }

    /// Bytes one block takes across all layers, keys and values (and their scales).
    pub fn bytes_per_block(config: &ModelConfig, block_size: usize, dtype: KvDtype) -> usize {
        2 * config.num_layers * dtype.bytes(block_size * config.kv_dim())
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
        assert_eq!("Q8_0".parse::<KvDtype>(), Ok(KvDtype::Q8_0));
        assert!("q4".parse::<KvDtype>().unwrap_err().contains("expected f16, f32 or q8_0"));
        assert_eq!(KvDtype::F16.bytes(64) * 2, KvDtype::F32.bytes(64));
        assert_eq!(KvDtype::Q8_0.bytes(64), 68);
        assert_eq!(KvDtype::default().to_string(), "f16");
        assert!(KvDtype::Q8_0.fits_head_dim(128) && !KvDtype::Q8_0.fits_head_dim(80));
        assert!(KvDtype::F16.fits_head_dim(80));
    }
}
