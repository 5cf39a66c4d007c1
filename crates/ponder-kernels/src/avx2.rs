//! AVX2 + FMA kernels. Every function here is `unsafe` and `#[target_feature]`: call only
//! after [`crate::Isa::detect`] found AVX2 and FMA.
//!
//! The matmul kernels work on a tile of `NR` weight rows × `MR` activation rows: each
//! weight block is loaded and decoded once per tile and multiplied with every activation row
//! of the tile. The arithmetic of each (activation row, weight row) pair is the same
//! sequence of instructions whatever the tile's shape, so a row's result does not depend on
//! how many other rows share the batch (batch invariance).

#![allow(clippy::missing_safety_doc)]

use std::arch::x86_64::*;

use crate::formats::{q4k_scale_min, ActQ8, ActQ8K, BlockQ4K, BlockQ5_0, BlockQ6K, BlockQ8_0, QK, QK_K};
use crate::scalar::act_scale;

/// How far ahead of the block being read the weight stream is prefetched.
const PREFETCH_BYTES: usize = 2048;

/// Prefetches the cache lines `PREFETCH_BYTES` ahead of a block of `size` bytes.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn prefetch_ahead(block: *const i8, size: usize) {
    let mut offset = 0;
    while offset < size {
        _mm_prefetch::<_MM_HINT_T0>(block.add(PREFETCH_BYTES + offset));
        offset += 64;
    }
}

/// Sum of the 8 lanes, always in the same order.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps(v, 1);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Largest lane.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn hmax(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps(v, 1);
    let m = _mm_max_ps(lo, hi);
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    let m = _mm_max_ss(m, _mm_movehdup_ps(m));
    _mm_cvtss_f32(m)
}

/// Quantizes 32 floats at `x` with inverse scale `id`, storing 32 bytes at `out`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_32(x: *const f32, id: f32, out: *mut i8) {
    let mul = _mm256_set1_ps(id);
    let round = |p: *const f32| {
        let v = _mm256_mul_ps(_mm256_loadu_ps(p), mul);
        _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
    };
    let (r0, r1, r2, r3) = (round(x), round(x.add(8)), round(x.add(16)), round(x.add(24)));
    let p01 = _mm256_packs_epi32(r0, r1);
    let p23 = _mm256_packs_epi32(r2, r3);
    let bytes = _mm256_packs_epi16(p01, p23);
    // The packs interleave 128-bit lanes; put the 32-bit groups back in order.
    let ordered = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(out as *mut __m256i, ordered);
}

/// Largest magnitude among `n` (a multiple of 8) floats at `x`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn amax(x: *const f32, n: usize) -> f32 {
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_setzero_ps();
    for i in (0..n).step_by(8) {
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x.add(i))));
    }
    hmax(m)
}

/// AVX2 version of [`crate::scalar::quantize_q8`]; produces identical bytes.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn quantize_q8(x: &[f32], out: &mut [ActQ8]) {
    for (block, values) in out.iter_mut().zip(x.chunks_exact(QK)) {
        let (d, id) = act_scale(amax(values.as_ptr(), QK));
        block.d = d;
        quantize_32(values.as_ptr(), id, block.qs.as_mut_ptr());
    }
}

/// AVX2 version of [`crate::scalar::quantize_q8k`]; produces identical bytes.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn quantize_q8k(x: &[f32], out: &mut [ActQ8K]) {
    for (block, values) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
        let (d, id) = act_scale(amax(values.as_ptr(), QK_K));
        block.d = d;
        for c in 0..QK_K / QK {
            quantize_32(values.as_ptr().add(QK * c), id, block.qs.as_mut_ptr().add(QK * c));
        }
        for (g, sum) in block.bsums.iter_mut().enumerate() {
            *sum = block.qs[16 * g..16 * g + 16].iter().map(|&q| i16::from(q)).sum();
        }
    }
}

/// 32 bytes: `0xFF` where bit `i` of `bits` is set.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn bytes_from_bits(bits: u32) -> __m256i {
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(bits as i32),
        _mm256_setr_epi64x(0, 0x0101_0101_0101_0101, 0x0202_0202_0202_0202, 0x0303_0303_0303_0303),
    );
    // Byte i of each 8 is OR-ed with every bit but bit i: all ones iff bit i was set.
    let others = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe);
    _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi64x(-1))
}

/// The 32 values of a Q5_0 block as signed bytes, and its scale.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn decode_q5_0(block: &BlockQ5_0) -> (__m256i, f32) {
    let qs = _mm_loadu_si128(block.qs.as_ptr() as *const __m128i);
    let low4 = _mm_set1_epi8(0x0F);
    let lo = _mm_and_si128(qs, low4);
    let hi = _mm_and_si128(_mm_srli_epi16(qs, 4), low4);
    let nibbles = _mm256_set_m128i(hi, lo);
    // (nibble | fifth bit << 4) - 16 as a signed byte: the nibble itself where the fifth bit
    // is set, else the nibble with the top four bits set (nibble - 16 in two's complement).
    let negative = _mm256_andnot_si256(bytes_from_bits(u32::from_le_bytes(block.qh)), _mm256_set1_epi8(0xF0u8 as i8));
    (_mm256_or_si256(nibbles, negative), block.d.to_f32())
}

/// Σ w·x of 32 signed bytes, as 8 float lanes of partial sums.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_i8(w_abs: __m256i, w: __m256i, x: __m256i) -> __m256 {
    let x_signed = _mm256_sign_epi8(x, w);
    let pairs = _mm256_maddubs_epi16(w_abs, x_signed);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

/// Multiplies `NR` rows of 32-element blocks (decoded by `decode`) with `MR` activation rows.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_small<B, const MR: usize, const NR: usize>(
    w: [&[B]; NR],
    x: [&[ActQ8]; MR],
    decode: impl Fn(&B) -> (__m256i, f32),
    out: &mut [[f32; NR]; MR],
) {
    let mut acc = [[_mm256_setzero_ps(); NR]; MR];
    let blocks = x[0].len();
    for b in 0..blocks {
        let mut wq = [_mm256_setzero_si256(); NR];
        let mut wabs = [_mm256_setzero_si256(); NR];
        let mut wd = [_mm256_setzero_ps(); NR];
        for n in 0..NR {
            prefetch_ahead(w[n].as_ptr().add(b) as *const i8, 1);
            let (q, d) = decode(w[n].get_unchecked(b));
            wq[n] = q;
            wabs[n] = _mm256_sign_epi8(q, q);
            wd[n] = _mm256_set1_ps(d);
        }
        for m in 0..MR {
            let xb = x[m].get_unchecked(b);
            let xq = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
            let xd = _mm256_broadcast_ss(&xb.d);
            for n in 0..NR {
                let sums = dot_i8(wabs[n], wq[n], xq);
                acc[m][n] = _mm256_fmadd_ps(_mm256_mul_ps(wd[n], xd), sums, acc[m][n]);
            }
        }
    }
    for m in 0..MR {
        for n in 0..NR {
            out[m][n] = hsum(acc[m][n]);
        }
    }
}

/// Q8_0 weights × 8-bit activations, `NR` × `MR` tile.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn tile_q8_0<const MR: usize, const NR: usize>(
    w: [&[BlockQ8_0]; NR],
    x: [&[ActQ8]; MR],
    out: &mut [[f32; NR]; MR],
) {
    tile_small(w, x, |b: &BlockQ8_0| (_mm256_loadu_si256(b.qs.as_ptr() as *const __m256i), b.d.to_f32()), out)
}

/// Q5_0 weights × 8-bit activations, `NR` × `MR` tile.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn tile_q5_0<const MR: usize, const NR: usize>(
    w: [&[BlockQ5_0]; NR],
    x: [&[ActQ8]; MR],
    out: &mut [[f32; NR]; MR],
) {
    tile_small(w, x, |b: &BlockQ5_0| decode_q5_0(b), out)
}

/// Q4_K weights × 8-bit super-block activations, `NR` × `MR` tile.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn tile_q4k<const MR: usize, const NR: usize>(
    w: [&[BlockQ4K]; NR],
    x: [&[ActQ8K]; MR],
    out: &mut [[f32; NR]; MR],
) {
    let mut acc = [[_mm256_setzero_ps(); NR]; MR];
    let mut acc_min = [[0f32; NR]; MR];
    let low4 = _mm256_set1_epi8(0x0F);
    let blocks = x[0].len();
    for b in 0..blocks {
        let mut scales = [[0i16; 8]; NR];
        let mut mins = [[0i32; 8]; NR];
        for n in 0..NR {
            prefetch_ahead(w[n].as_ptr().add(b) as *const i8, std::mem::size_of::<BlockQ4K>());
            let wb = w[n].get_unchecked(b);
            for j in 0..8 {
                let (s, m) = q4k_scale_min(j, &wb.scales);
                scales[n][j] = i16::from(s);
                mins[n][j] = i32::from(m);
            }
        }
        let mut isum = [[_mm256_setzero_si256(); NR]; MR];
        for chunk in 0..4 {
            let mut lo = [_mm256_setzero_si256(); NR];
            let mut hi = [_mm256_setzero_si256(); NR];
            for n in 0..NR {
                let q = _mm256_loadu_si256(w[n].get_unchecked(b).qs.as_ptr().add(32 * chunk) as *const __m256i);
                lo[n] = _mm256_and_si256(q, low4);
                hi[n] = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
            }
            for m in 0..MR {
                let xq = x[m].get_unchecked(b).qs.as_ptr().add(64 * chunk);
                let x0 = _mm256_loadu_si256(xq as *const __m256i);
                let x1 = _mm256_loadu_si256(xq.add(32) as *const __m256i);
                for n in 0..NR {
                    let p0 = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(lo[n], x0),
                        _mm256_set1_epi16(scales[n][2 * chunk]),
                    );
                    let p1 = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(hi[n], x1),
                        _mm256_set1_epi16(scales[n][2 * chunk + 1]),
                    );
                    isum[m][n] = _mm256_add_epi32(isum[m][n], _mm256_add_epi32(p0, p1));
                }
            }
        }
        for m in 0..MR {
            let xb = x[m].get_unchecked(b);
            for n in 0..NR {
                let wb = w[n].get_unchecked(b);
                let d = wb.d.to_f32() * xb.d;
                acc[m][n] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum[m][n]), acc[m][n]);
                let mut summ = 0i32;
                for j in 0..8 {
                    summ += mins[n][j] * (i32::from(xb.bsums[2 * j]) + i32::from(xb.bsums[2 * j + 1]));
                }
                acc_min[m][n] += wb.dmin.to_f32() * xb.d * summ as f32;
            }
        }
    }
    for m in 0..MR {
        for n in 0..NR {
            out[m][n] = hsum(acc[m][n]) - acc_min[m][n];
        }
    }
}

/// Q6_K weights × 8-bit super-block activations, `NR` × `MR` tile.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn tile_q6k<const MR: usize, const NR: usize>(
    w: [&[BlockQ6K]; NR],
    x: [&[ActQ8K]; MR],
    out: &mut [[f32; NR]; MR],
) {
    let mut acc = [[_mm256_setzero_ps(); NR]; MR];
    let mut acc_offset = [[0f32; NR]; MR];
    let low4 = _mm256_set1_epi8(0x0F);
    let low2 = _mm256_set1_epi8(0x03);
    let blocks = x[0].len();
    for b in 0..blocks {
        for row in w.iter() {
            prefetch_ahead(row.as_ptr().add(b) as *const i8, std::mem::size_of::<BlockQ6K>());
        }
        let mut isum = [[_mm256_setzero_si256(); NR]; MR];
        for half in 0..2 {
            // Four vectors of 32 six-bit values (0..63) per weight row, for elements
            // 128·half + 32·i .. + 32, and their two group scales each.
            let mut q = [[_mm256_setzero_si256(); 4]; NR];
            let mut sc = [[_mm256_setzero_si256(); 4]; NR];
            for n in 0..NR {
                let wb = w[n].get_unchecked(b);
                let ql = wb.ql.as_ptr().add(64 * half);
                let la = _mm256_loadu_si256(ql as *const __m256i);
                let lb = _mm256_loadu_si256(ql.add(32) as *const __m256i);
                let h = _mm256_loadu_si256(wb.qh.as_ptr().add(32 * half) as *const __m256i);
                let high = |shift: i32| -> __m256i {
                    let bits = match shift {
                        0 => h,
                        2 => _mm256_srli_epi16(h, 2),
                        4 => _mm256_srli_epi16(h, 4),
                        _ => _mm256_srli_epi16(h, 6),
                    };
                    _mm256_slli_epi16(_mm256_and_si256(bits, low2), 4)
                };
                q[n][0] = _mm256_or_si256(_mm256_and_si256(la, low4), high(0));
                q[n][1] = _mm256_or_si256(_mm256_and_si256(lb, low4), high(2));
                q[n][2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(la, 4), low4), high(4));
                q[n][3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lb, 4), low4), high(6));
                for (i, s) in sc[n].iter_mut().enumerate() {
                    let g = 8 * half + 2 * i;
                    *s = _mm256_set_m128i(
                        _mm_set1_epi16(i16::from(wb.scales[g + 1])),
                        _mm_set1_epi16(i16::from(wb.scales[g])),
                    );
                }
            }
            for m in 0..MR {
                let xq = x[m].get_unchecked(b).qs.as_ptr().add(128 * half);
                for i in 0..4 {
                    let xv = _mm256_loadu_si256(xq.add(32 * i) as *const __m256i);
                    for n in 0..NR {
                        let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q[n][i], xv), sc[n][i]);
                        isum[m][n] = _mm256_add_epi32(isum[m][n], p);
                    }
                }
            }
        }
        for m in 0..MR {
            let xb = x[m].get_unchecked(b);
            for n in 0..NR {
                let wb = w[n].get_unchecked(b);
                let d = wb.d.to_f32() * xb.d;
                acc[m][n] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum[m][n]), acc[m][n]);
                let mut offset = 0i32;
                for g in 0..QK_K / 16 {
                    offset += i32::from(wb.scales[g]) * i32::from(xb.bsums[g]);
                }
                acc_offset[m][n] += d * (32 * offset) as f32;
            }
        }
    }
    for m in 0..MR {
        for n in 0..NR {
            out[m][n] = hsum(acc[m][n]) - acc_offset[m][n];
        }
    }
}

/// Dot product of two f32 slices of equal length, 8 lanes at a time.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len();
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i)), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i + 8)), _mm256_loadu_ps(b.as_ptr().add(i + 8)), acc1);
        i += 16;
    }
    if i + 8 <= n {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i)), acc0);
        i += 8;
    }
    let mut sum = hsum(_mm256_add_ps(acc0, acc1));
    while i < n {
        sum += a[i] * b[i];
        i += 1;
    }
    sum
}

/// `out += w * v`, 8 lanes at a time.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn axpy(w: f32, v: &[f32], out: &mut [f32]) {
    let n = out.len();
    let wv = _mm256_set1_ps(w);
    let mut i = 0;
    while i + 8 <= n {
        let o = _mm256_loadu_ps(out.as_ptr().add(i));
        _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_fmadd_ps(wv, _mm256_loadu_ps(v.as_ptr().add(i)), o));
        i += 8;
    }
    while i < n {
        out[i] += w * v[i];
        i += 1;
    }
}
