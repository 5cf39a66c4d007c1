//! Portable reference implementations: every SIMD kernel is tested against these.

use crate::formats::{
    q4k_scale_min, ActQ8, ActQ8K, BlockQ4K, BlockQ5_0, BlockQ6K, BlockQ8_0, Interleaved, GROUP_ROWS, QK, QK_K,
};

/// The scale and its inverse for a block whose largest magnitude is `amax`.
#[inline]
pub(crate) fn act_scale(amax: f32) -> (f32, f32) {
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    (d, id)
}

/// Rounds to the nearest integer, ties to even (as the SIMD rounding instructions do).
#[inline]
pub(crate) fn round_q(v: f32) -> i8 {
    v.round_ties_even().clamp(-127.0, 127.0) as i8
}

/// Quantizes `x` (a multiple of 32 long) to 8-bit blocks of 32.
pub fn quantize_q8(x: &[f32], out: &mut [ActQ8]) {
    for (block, values) in out.iter_mut().zip(x.chunks_exact(QK)) {
        let amax = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let (d, id) = act_scale(amax);
        block.d = d;
        for (q, &v) in block.qs.iter_mut().zip(values) {
            *q = round_q(v * id);
        }
        block.minus_offset16 = -16 * block.qs.iter().map(|&q| i32::from(q)).sum::<i32>();
    }
}

/// Quantizes `x` (a multiple of 256 long) to 8-bit super-blocks with group sums.
pub fn quantize_q8k(x: &[f32], out: &mut [ActQ8K]) {
    for (block, values) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
        let amax = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let (d, id) = act_scale(amax);
        block.d = d;
        for (q, &v) in block.qs.iter_mut().zip(values) {
            *q = round_q(v * id);
        }
        for (g, sum) in block.bsums.iter_mut().enumerate() {
            *sum = block.qs[16 * g..16 * g + 16].iter().map(|&q| i16::from(q)).sum();
        }
    }
}

/// The 32 signed values of a Q5_0 block, in element order.
pub fn unpack_q5_0(block: &BlockQ5_0) -> [i8; QK] {
    let qh = u32::from_le_bytes(block.qh);
    let mut out = [0i8; QK];
    for j in 0..QK / 2 {
        let lo = (block.qs[j] & 0x0F) | ((((qh >> j) & 1) as u8) << 4);
        let hi = (block.qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
        out[j] = lo as i8 - 16;
        out[j + QK / 2] = hi as i8 - 16;
    }
    out
}

/// The 256 unsigned values (0..63, offset 32 not removed) of a Q6_K block, in element order.
pub fn unpack_q6k(block: &BlockQ6K) -> [u8; QK_K] {
    let mut out = [0u8; QK_K];
    for half in 0..2 {
        let ql = &block.ql[64 * half..];
        let qh = &block.qh[32 * half..];
        let y = &mut out[128 * half..];
        for l in 0..32 {
            y[l] = (ql[l] & 0xF) | ((qh[l] & 3) << 4);
            y[l + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
            y[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
            y[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
        }
    }
    out
}

/// Dot product of a Q8_0 row with quantized activations.
pub fn dot_q8_0(w: &[BlockQ8_0], x: &[ActQ8]) -> f32 {
    w.iter()
        .zip(x)
        .map(|(wb, xb)| {
            let isum: i32 = wb.qs.iter().zip(&xb.qs).map(|(&a, &b)| i32::from(a) * i32::from(b)).sum();
            wb.d.to_f32() * xb.d * isum as f32
        })
        .sum()
}

/// Dot product of a Q5_0 row with quantized activations.
pub fn dot_q5_0(w: &[BlockQ5_0], x: &[ActQ8]) -> f32 {
    w.iter()
        .zip(x)
        .map(|(wb, xb)| {
            let q = unpack_q5_0(wb);
            let isum: i32 = q.iter().zip(&xb.qs).map(|(&a, &b)| i32::from(a) * i32::from(b)).sum();
            wb.d.to_f32() * xb.d * isum as f32
        })
        .sum()
}

/// Dot product of a Q4_K row with quantized activations.
pub fn dot_q4k(w: &[BlockQ4K], x: &[ActQ8K]) -> f32 {
    w.iter()
        .zip(x)
        .map(|(wb, xb)| {
            let mut scaled = 0i32;
            let mut mins = 0i32;
            for j in 0..QK_K / 32 {
                let (scale, min) = q4k_scale_min(j, &wb.scales);
                let qs = &wb.qs[32 * (j / 2)..32 * (j / 2) + 32];
                let xs = &xb.qs[32 * j..32 * j + 32];
                let isum: i32 = qs
                    .iter()
                    .zip(xs)
                    .map(|(&q, &x)| {
                        let nibble = if j % 2 == 0 { q & 0x0F } else { q >> 4 };
                        i32::from(nibble) * i32::from(x)
                    })
                    .sum();
                scaled += i32::from(scale) * isum;
                mins += i32::from(min) * (i32::from(xb.bsums[2 * j]) + i32::from(xb.bsums[2 * j + 1]));
            }
            xb.d * (wb.d.to_f32() * scaled as f32 - wb.dmin.to_f32() * mins as f32)
        })
        .sum()
}

/// Dot product of a Q6_K row with quantized activations.
pub fn dot_q6k(w: &[BlockQ6K], x: &[ActQ8K]) -> f32 {
    w.iter()
        .zip(x)
        .map(|(wb, xb)| {
            let q = unpack_q6k(wb);
            let mut isum = 0i32;
            for g in 0..QK_K / 16 {
                let group: i32 = (16 * g..16 * g + 16).map(|e| (i32::from(q[e]) - 32) * i32::from(xb.qs[e])).sum();
                isum += i32::from(wb.scales[g]) * group;
            }
            wb.d.to_f32() * xb.d * isum as f32
        })
        .sum()
}

/// Dequantizes a row of Q8_0 blocks.
pub fn dequantize_q8_0(w: &[BlockQ8_0], out: &mut [f32]) {
    for (block, y) in w.iter().zip(out.chunks_exact_mut(QK)) {
        for (v, &q) in y.iter_mut().zip(&block.qs) {
            *v = block.d.to_f32() * f32::from(q);
        }
    }
}

/// Dot products of eight interleaved rows with quantized activations: each row unpacked
/// and multiplied by `dot` (the GGUF-layout reference).
pub fn dot_interleaved<B: Interleaved, A>(w: &[B::Packed], x: &[A], dot: fn(&[B], &[A]) -> f32) -> [f32; GROUP_ROWS] {
    std::array::from_fn(|r| {
        let row: Vec<B> = w.iter().map(|b| B::unpack(b, r)).collect();
        dot(&row, x)
    })
}

/// Dequantizes a row of Q5_0 blocks.
pub fn dequantize_q5_0(w: &[BlockQ5_0], out: &mut [f32]) {
    for (block, y) in w.iter().zip(out.chunks_exact_mut(QK)) {
        for (v, q) in y.iter_mut().zip(unpack_q5_0(block)) {
            *v = block.d.to_f32() * f32::from(q);
        }
    }
}

/// Dequantizes a row of Q4_K blocks.
pub fn dequantize_q4k(w: &[BlockQ4K], out: &mut [f32]) {
    for (block, y) in w.iter().zip(out.chunks_exact_mut(QK_K)) {
        for j in 0..QK_K / 32 {
            let (scale, min) = q4k_scale_min(j, &block.scales);
            let d = block.d.to_f32() * f32::from(scale);
            let m = block.dmin.to_f32() * f32::from(min);
            for l in 0..32 {
                let q = block.qs[32 * (j / 2) + l];
                let nibble = if j % 2 == 0 { q & 0x0F } else { q >> 4 };
                y[32 * j + l] = d * f32::from(nibble) - m;
            }
        }
    }
}

/// Dequantizes a row of Q6_K blocks.
pub fn dequantize_q6k(w: &[BlockQ6K], out: &mut [f32]) {
    for (block, y) in w.iter().zip(out.chunks_exact_mut(QK_K)) {
        let q = unpack_q6k(block);
        for (e, v) in y.iter_mut().enumerate() {
            *v = block.d.to_f32() * f32::from(block.scales[e / 16]) * (f32::from(q[e]) - 32.0);
        }
    }
}

/// Quantizes a row of weights (a multiple of 32 long) to Q8_0 blocks, for weight types
/// without kernels of their own (they are re-quantized once, at load).
pub fn quantize_weights_q8_0(x: &[f32]) -> Vec<BlockQ8_0> {
    x.chunks_exact(QK)
        .map(|values| {
            let amax = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let (d, id) = act_scale(amax);
            let mut qs = [0i8; QK];
            for (q, &v) in qs.iter_mut().zip(values) {
                *q = round_q(v * id);
            }
            BlockQ8_0 { d: half::f16::from_f32(d), qs }
        })
        .collect()
}
