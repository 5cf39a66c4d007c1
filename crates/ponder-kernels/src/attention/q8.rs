//! An 8-bit KV cache, as llama.cpp's `q8_0`: each token's keys and values, per head, in
//! groups of [`Q8_GROUP`] elements that share an f16 scale (1.0625 bytes an element, against
//! 2 for f16). The elements sit as [`KvLayout`] places them; the scales follow the same
//! layout with a group in place of an element, so one call stores or copies them too.
//! Attention widens a span of blocks of one KV head at a time to f32 (eight elements at a
//! time on AVX2), as for the other types: the widening is the same arithmetic for a block
//! whatever tile reads it, so the cache keeps the batch invariance.

use half::f16;

use super::{prefetch, KvBlocks, KvLayout, StoredKv};
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

/// A block's keys of one KV head (`head_dim` rows of the block's `width` tokens) into rows
/// of `dst` that start `stride` apart, each element times its token's scale for its
/// dimension's group (`scales`: a row of `width` a group). Panics if a slice is short.
fn widen_keys(isa: Isa, q: &[i8], scales: &[f16], width: usize, dst: &mut [f32], stride: usize) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an AVX2 `Isa` is made only by `Isa::available`, after finding AVX2, FMA and
        // F16C, the target features of the `avx2` kernels.
        return unsafe { crate::avx2::widen_q8_rows(q, scales, width, dst, stride) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = isa;
    for (d, row) in q.chunks_exact(width).enumerate() {
        let scale_row = &scales[d / Q8_GROUP * width..(d / Q8_GROUP + 1) * width];
        for ((out, &q), &scale) in dst[d * stride..d * stride + width].iter_mut().zip(row).zip(scale_row) {
            *out = f32::from(q) * scale.to_f32();
        }
    }
}

/// A block's values of one KV head (token after token) into `dst`, each group of
/// [`Q8_GROUP`] elements times its scale. Panics unless `dst` is as long as `q`, or if
/// `scales` is short.
fn widen_values(isa: Isa, q: &[i8], scales: &[f16], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: as in `widen_keys`.
        return unsafe { crate::avx2::widen_q8_groups(q, scales, dst) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = isa;
    assert_eq!(q.len(), dst.len(), "widen_values: lengths differ");
    for ((out, q), &scale) in dst.chunks_exact_mut(Q8_GROUP).zip(q.chunks_exact(Q8_GROUP)).zip(scales) {
        let scale = scale.to_f32();
        for (o, &q) in out.iter_mut().zip(q) {
            *o = f32::from(q) * scale;
        }
    }
}

impl<'a> KvViewQ8<'a> {
    /// KV head `kv_head`'s keys of `block` (`head_dim × block_size`, transposed) and their
    /// scales (a row of `block_size` a group of dimensions). Panics if the block is outside
    /// the cache.
    pub fn head_keys(&self, block: u32, kv_head: usize) -> (&'a [i8], &'a [f16]) {
        let (keys, scales) = self.head(block, kv_head);
        (&self.keys[keys], &self.key_scales[scales])
    }

    /// KV head `kv_head`'s values of `block` (`block_size × head_dim`, token after token) and
    /// their scales (each token's groups in order). Panics if the block is outside the cache.
    pub fn head_values(&self, block: u32, kv_head: usize) -> (&'a [i8], &'a [f16]) {
        let (values, scales) = self.head(block, kv_head);
        (&self.values[values], &self.value_scales[scales])
    }

    /// Where KV head `kv_head`'s part of `block` lies in the elements and in the scales.
    fn head(&self, block: u32, kv_head: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let (layout, scales) = (self.layout, self.layout.q8_scales());
        let (head, scale_head) = (layout.head_start(block, kv_head), scales.head_start(block, kv_head));
        (head..head + layout.head_floats(), scale_head..scale_head + scales.head_floats())
    }
}

impl KvBlocks for KvViewQ8<'_> {
    fn layout(&self) -> KvLayout {
        self.layout
    }

    fn widen(&self, isa: Isa, block: u32, kv_head: usize, span: usize, keys: &mut [f32], values: &mut [f32]) {
        let (block_keys, key_scales) = self.head_keys(block, kv_head);
        widen_keys(isa, block_keys, key_scales, self.layout.block_size, keys, span);
        let (block_values, value_scales) = self.head_values(block, kv_head);
        widen_values(isa, block_values, value_scales, &mut values[..self.layout.head_floats()]);
    }

    fn prefetch(&self, isa: Isa, block: u32, kv_head: usize) {
        let ((keys, key_scales), (values, value_scales)) =
            (self.head_keys(block, kv_head), self.head_values(block, kv_head));
        prefetch(isa, keys);
        prefetch(isa, values);
        prefetch(isa, key_scales);
        prefetch(isa, value_scales);
    }

    fn stored(&self) -> Option<StoredKv<'_>> {
        // Read straight, the 8-bit elements' conversions (a product each) ran half again the
        // widening's instructions in a decode tile: this cache is always widened.
        None
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
    fn every_simd_level_widens_to_the_same_bits() {
        // Block sizes whose rows end in a partial register, the usual 16, and a wider one.
        for block_size in [4, 12, 16, 24] {
            let layout = KvLayout { kv_heads: 2, head_dim: 64, block_size };
            let scales = layout.q8_scales();
            let blocks = 3;
            let element = |i: usize| ((i * 7919 % 255) as i32 - 127) as i8;
            let scale = |i: usize| f16::from_f32(((i * 31 % 97) as f32 + 0.37) * 1e-3);
            let keys: Vec<i8> = (0..blocks * layout.block_floats()).map(element).collect();
            let values: Vec<i8> = (0..blocks * layout.block_floats()).map(|i| element(i + 5)).collect();
            let key_scales: Vec<f16> = (0..blocks * scales.block_floats()).map(scale).collect();
            let value_scales: Vec<f16> = (0..blocks * scales.block_floats()).map(|i| scale(i + 3)).collect();
            let view =
                KvViewQ8 { keys: &keys, values: &values, key_scales: &key_scales, value_scales: &value_scales, layout };
            let span = 2 * block_size;
            let widened = |isa: Isa| {
                let (mut k, mut v) = (vec![f32::NAN; 64 * span], vec![f32::NAN; span * 64]);
                for (i, block) in [2, 0].into_iter().enumerate() {
                    view.widen(isa, block, 1, span, &mut k[i * block_size..], &mut v[i * block_size * 64..]);
                }
                (k, v)
            };
            let (scalar_keys, scalar_values) = widened(Isa::SCALAR);
            // Block 2 (the span's first) of head 1: slot 1's dimension 40 times its token's
            // scale for group 1, and slot 3's value 50 times its group-1 scale.
            let (head, scale_head) = (layout.head_start(2, 1), scales.head_start(2, 1));
            let key = f32::from(keys[head + 40 * block_size + 1]) * key_scales[scale_head + block_size + 1].to_f32();
            assert_eq!(scalar_keys[40 * span + 1], key);
            let value = f32::from(values[head + 3 * 64 + 50]) * value_scales[scale_head + 3 * 2 + 1].to_f32();
            assert_eq!(scalar_values[3 * 64 + 50], value);
            let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            for isa in Isa::available() {
                let (k, v) = widened(isa);
                assert!(same(&k, &scalar_keys), "{isa} keys, blocks of {block_size}");
                assert!(same(&v, &scalar_values), "{isa} values, blocks of {block_size}");
            }
        }
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
            for (i, block) in [0, 2].into_iter().enumerate() {
                view.widen(Isa::SCALAR, block, h, 8, &mut wk[i * 4..], &mut wv[i * 4 * 64..]);
            }
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
