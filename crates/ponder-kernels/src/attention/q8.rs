//! An 8-bit KV cache, as llama.cpp's `q8_0`: each token's keys and values, per head, in
//! groups of [`Q8_GROUP`] elements that share an f16 scale (1.0625 bytes an element, against
//! 2 for f16). The elements sit as [`KvLayout`] places them; the scales follow the same
//! layout with a group in place of an element, so one call stores or copies them too.
//! Attention widens a span of blocks of one KV head at a time to f32, as for the other
//! types: the widening is the same arithmetic for a block whatever tile reads it, so the
//! cache keeps the batch invariance.

use half::f16;

use super::{prefetch, KvBlocks, KvLayout};
use crate::Isa;

/// Elements that share a scale.
pub const Q8_GROUP: usize = 32;

/// One layer's 8-bit KV cache.
#[derive(Debug, Clone, Copy)]
pub struct KvViewQ8<'a> {
    /// Keys, laid out as `layout` says.
    pub keys: &'a [i8],
    /// Values, laid out as `layout` says.
    pub values: &'a [i8],
    /// The keys' scales, laid out as [`KvLayout::q8_scales`] says.
    pub key_scales: &'a [f16],
    /// The values' scales, likewise.
    pub value_scales: &'a [f16],
    /// The elements' layout.
    pub layout: KvLayout,
}

impl KvLayout {
    /// The layout of an 8-bit cache's scales: one per group of [`Q8_GROUP`] elements of a
    /// head, in place of the elements. Panics unless `head_dim` is a multiple of the group.
    pub fn q8_scales(&self) -> KvLayout {
        assert!(
            self.head_dim.is_multiple_of(Q8_GROUP),
            "an 8-bit cache needs heads of whole {Q8_GROUP}-element groups, not {}",
            self.head_dim
        );
        KvLayout { head_dim: self.head_dim / Q8_GROUP, ..*self }
    }
}

/// `x` (a whole number of groups) as 8-bit integers into `q`, and each group's scale into
/// `scales`: the group's largest magnitude maps to ±127, each element rounds to the nearest
/// step. Panics if a slice is short.
pub fn quantize_q8(x: &[f32], q: &mut [i8], scales: &mut [f16]) {
    for ((group, out), scale) in x.chunks_exact(Q8_GROUP).zip(q.chunks_exact_mut(Q8_GROUP)).zip(scales.iter_mut()) {
        let max = group.iter().fold(0f32, |m, x| m.max(x.abs()));
        let d = max / 127.0;
        let inverse = if d > 0.0 { 1.0 / d } else { 0.0 };
        for (o, &x) in out.iter_mut().zip(group) {
            *o = (x * inverse).round() as i8;
        }
        *scale = f16::from_f32(d);
    }
}

impl KvBlocks for KvViewQ8<'_> {
    fn layout(&self) -> KvLayout {
        self.layout
    }

    fn widen(&self, _isa: Isa, blocks: &[u32], kv_head: usize, span: usize, keys: &mut [f32], values: &mut [f32]) {
        let layout = self.layout;
        let scales = layout.q8_scales();
        let (head_dim, bs, groups) = (layout.head_dim, layout.block_size, scales.head_dim);
        for (i, &block) in blocks.iter().enumerate() {
            let (head, scale_head) = (layout.head_start(block, kv_head), scales.head_start(block, kv_head));
            // Keys: dimension `d`'s row of the block's tokens, each token its group's scale.
            let key_scales = &self.key_scales[scale_head..scale_head + groups * bs];
            for d in 0..head_dim {
                let scale_row = &key_scales[d / Q8_GROUP * bs..(d / Q8_GROUP + 1) * bs];
                let q = &self.keys[head + d * bs..head + (d + 1) * bs];
                let out = &mut keys[d * span + i * bs..d * span + (i + 1) * bs];
                for ((out, &q), &scale) in out.iter_mut().zip(q).zip(scale_row) {
                    *out = f32::from(q) * scale.to_f32();
                }
            }
            // Values: token after token, a scale per group.
            let value_scales = &self.value_scales[scale_head..scale_head + groups * bs];
            let q_values = &self.values[head..head + bs * head_dim];
            let out = &mut values[i * bs * head_dim..(i + 1) * bs * head_dim];
            for ((out, q), &scale) in
                out.chunks_exact_mut(Q8_GROUP).zip(q_values.chunks_exact(Q8_GROUP)).zip(value_scales)
            {
                let scale = scale.to_f32();
                for (o, &q) in out.iter_mut().zip(q) {
                    *o = f32::from(q) * scale;
                }
            }
        }
    }

    fn prefetch(&self, isa: Isa, blocks: &[u32], kv_head: usize) {
        let (layout, scales) = (self.layout, self.layout.q8_scales());
        for &block in blocks {
            let (head, scale_head) = (layout.head_start(block, kv_head), scales.head_start(block, kv_head));
            let (end, scale_end) = (head + layout.head_floats(), scale_head + scales.head_floats());
            prefetch(isa, &self.keys[head..end]);
            prefetch(isa, &self.values[head..end]);
            prefetch(isa, &self.key_scales[scale_head..scale_end]);
            prefetch(isa, &self.value_scales[scale_head..scale_end]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantization_keeps_each_element_within_half_a_step() {
        let x: Vec<f32> = (0..64).map(|i| ((i * 37 % 64) as f32 - 30.0) * if i < 32 { 0.01 } else { 3.0 }).collect();
        let (mut q, mut scales) = (vec![0i8; 64], vec![f16::ZERO; 2]);
        quantize_q8(&x, &mut q, &mut scales);
        for (i, (&x, &q)) in x.iter().zip(&q).enumerate() {
            let d = scales[i / Q8_GROUP].to_f32();
            assert!((f32::from(q) * d - x).abs() <= 0.5 * d + x.abs() * 1e-3, "element {i}: {x} became {q} × {d}");
        }
        assert!(q.iter().any(|&q| q.abs() == 127));
        let (mut zero_q, mut zero_scale) = (vec![1i8; 32], vec![f16::ONE]);
        quantize_q8(&[0.0; 32], &mut zero_q, &mut zero_scale);
        assert_eq!((zero_q, zero_scale), (vec![0i8; 32], vec![f16::ZERO]));
    }

    #[test]
    fn a_stored_token_widens_back_to_its_values() {
        let layout = KvLayout { kv_heads: 2, head_dim: 64, block_size: 4 };
        let scales = layout.q8_scales();
        let blocks = 3;
        let (mut keys, mut values) =
            (vec![0i8; blocks * layout.block_floats()], vec![0i8; blocks * layout.block_floats()]);
        let (mut key_scales, mut value_scales) =
            (vec![f16::ZERO; blocks * scales.block_floats()], vec![f16::ZERO; blocks * scales.block_floats()]);
        let k: Vec<f32> = (0..128).map(|i| (i as f32 - 60.0) * 0.5).collect();
        let v: Vec<f32> = (0..128).map(|i| (i as f32 * 0.3).sin()).collect();
        let (mut qk, mut qv, mut sk, mut sv) = (vec![0i8; 128], vec![0i8; 128], vec![f16::ZERO; 4], vec![f16::ZERO; 4]);
        quantize_q8(&k, &mut qk, &mut sk);
        quantize_q8(&v, &mut qv, &mut sv);
        layout.store(&mut keys, &mut values, 2, 3, &qk, &qv, |x| x);
        scales.store(&mut key_scales, &mut value_scales, 2, 3, &sk, &sv, |x| x);
        let view =
            KvViewQ8 { keys: &keys, values: &values, key_scales: &key_scales, value_scales: &value_scales, layout };
        // Blocks 0 and 2 as one span of 8: block 2 in columns (keys) and rows (values) 4..8.
        let (mut wk, mut wv) = (vec![f32::NAN; 64 * 8], vec![f32::NAN; 8 * 64]);
        for h in 0..2 {
            view.widen(Isa::SCALAR, &[0, 2], h, 8, &mut wk, &mut wv);
            for d in 0..64 {
                let (key, value) = (k[h * 64 + d], v[h * 64 + d]);
                assert!((wk[d * 8 + 4 + 3] - key).abs() <= 0.5 * sk[h * 2 + d / 32].to_f32() + 1e-3 * key.abs());
                assert!((wv[(4 + 3) * 64 + d] - value).abs() <= 0.5 * sv[h * 2 + d / 32].to_f32() + 1e-3 * value.abs());
                assert_eq!(wk[d * 8 + 4], 0.0, "slot 0 of block 2 was never written");
                assert_eq!(wv[d], 0.0, "block 0 was never written");
            }
        }
    }
}
