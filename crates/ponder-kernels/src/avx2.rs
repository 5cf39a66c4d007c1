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

use crate::formats::{q4k_scale_min, ActQ8, ActQ8K, BlockQ4K, BlockQ5_0x8, BlockQ6K, BlockQ8_0x8, QK, QK_K};
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
        block.sum = block.qs.iter().map(|&q| i32::from(q)).sum();
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

/// Eight interleaved Q8_0 rows × `MR` activation rows: `out[m][r] = Σ w[r] · x[m]`.
///
/// `maddubs` takes `|w|` and `x` with `w`'s sign; its pairs (up to 2 · 127² in 16 bits)
/// are widened at once. Every accumulator lane is one weight row, as in [`tile_q5_0x8`].
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn tile_q8_0x8<const MR: usize>(w: &[BlockQ8_0x8], x: [&[ActQ8]; MR], out: &mut [[f32; 8]; MR]) {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); MR];
    for (b, wb) in w.iter().enumerate() {
        prefetch_ahead(wb as *const BlockQ8_0x8 as *const i8, std::mem::size_of::<BlockQ8_0x8>());
        let mut isum = [_mm256_setzero_si256(); MR];
        for j in 0..8 {
            let q = _mm256_loadu_si256(wb.qs.as_ptr().add(32 * j) as *const __m256i);
            let q_abs = _mm256_sign_epi8(q, q);
            for m in 0..MR {
                let xb = x[m].get_unchecked(b);
                let xs = _mm256_set1_epi32(std::ptr::read_unaligned(xb.qs.as_ptr().add(4 * j) as *const i32));
                let pairs = _mm256_maddubs_epi16(q_abs, _mm256_sign_epi8(xs, q));
                isum[m] = _mm256_add_epi32(isum[m], _mm256_madd_epi16(pairs, ones));
            }
        }
        let wd = _mm256_cvtph_ps(_mm_loadu_si128(wb.d.as_ptr() as *const __m128i));
        for m in 0..MR {
            let xb = x[m].get_unchecked(b);
            let scale = _mm256_mul_ps(wd, _mm256_set1_ps(xb.d));
            acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[m]), scale, acc[m]);
        }
    }
    for m in 0..MR {
        _mm256_storeu_ps(out[m].as_mut_ptr(), acc[m]);
    }
}

/// Eight interleaved Q5_0 rows × `MR` activation rows: `out[m][r] = Σ w[r] · x[m]`.
///
/// Weights are taken as unsigned bytes `q + 16` (0..=31), so `maddubs` needs no sign
/// tricks; `16 · Σ x` per block (from [`ActQ8::sum`]) takes the offset back out. Four
/// registers' `maddubs` pairs add up in 16 bits without overflow (4 · 2 · 31 · 127 < 2¹⁵).
/// Every lane of the accumulator is one weight row, so no horizontal sums are needed, and a
/// row's result does not depend on `MR`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn tile_q5_0x8<const MR: usize>(w: &[BlockQ5_0x8], x: [&[ActQ8]; MR], out: &mut [[f32; 8]; MR]) {
    // Lane r (row r) tests bit r of each of its four bytes.
    let row_bit = _mm256_setr_epi32(
        0x0101_0101,
        0x0202_0202,
        0x0404_0404,
        0x0808_0808,
        0x1010_1010,
        0x2020_2020,
        0x4040_4040,
        0x8080_8080u32 as i32,
    );
    let low4 = _mm256_set1_epi8(0x0F);
    let fifth = _mm256_set1_epi8(0x10);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); MR];
    for (b, wb) in w.iter().enumerate() {
        prefetch_ahead(wb as *const BlockQ5_0x8 as *const i8, std::mem::size_of::<BlockQ5_0x8>());
        let mut isum = [_mm256_setzero_si256(); MR];
        for half in 0..2 {
            let mut pairs = [_mm256_setzero_si256(); MR];
            for reg in 0..4 {
                let j = 4 * half + reg;
                let qs = _mm256_loadu_si256(wb.qs.as_ptr().add(32 * reg) as *const __m256i);
                let nibbles = if half == 0 { qs } else { _mm256_srli_epi16(qs, 4) };
                let bits = _mm256_set1_epi32(wb.qh[j] as i32);
                let has_fifth = _mm256_cmpeq_epi8(_mm256_and_si256(bits, row_bit), row_bit);
                let unsigned = _mm256_or_si256(_mm256_and_si256(nibbles, low4), _mm256_and_si256(has_fifth, fifth));
                for m in 0..MR {
                    let xb = x[m].get_unchecked(b);
                    let xs = _mm256_set1_epi32(std::ptr::read_unaligned(xb.qs.as_ptr().add(4 * j) as *const i32));
                    pairs[m] = _mm256_add_epi16(pairs[m], _mm256_maddubs_epi16(unsigned, xs));
                }
            }
            for m in 0..MR {
                isum[m] = _mm256_add_epi32(isum[m], _mm256_madd_epi16(pairs[m], ones));
            }
        }
        let wd = _mm256_cvtph_ps(_mm_loadu_si128(wb.d.as_ptr() as *const __m128i));
        for m in 0..MR {
            let xb = x[m].get_unchecked(b);
            let signed = _mm256_sub_epi32(isum[m], _mm256_set1_epi32(16 * xb.sum));
            let scale = _mm256_mul_ps(wd, _mm256_set1_ps(xb.d));
            acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(signed), scale, acc[m]);
        }
    }
    for m in 0..MR {
        _mm256_storeu_ps(out[m].as_mut_ptr(), acc[m]);
    }
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
