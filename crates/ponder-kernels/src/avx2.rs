//! AVX2 + FMA kernels. Every function here is `unsafe` and `#[target_feature]`: call only
//! after [`crate::Isa::detect`] found AVX2 and FMA.
//!
//! The matmul kernels work on eight interleaved weight rows × up to [`TILE_ROWS`] activation
//! rows: each weight slice is loaded and decoded once and multiplied with every activation
//! row. The arithmetic of each (activation row, weight row) pair is the same sequence of
//! instructions however many rows there are, so a row's result does not depend on how many
//! other rows share the batch (batch invariance).

#![allow(clippy::missing_safety_doc)]

use std::arch::x86_64::*;

use crate::formats::{ActQ8, ActQ8K, ActQ8x8, BlockQ4Kx8, BlockQ5_0x8, BlockQ6Kx8, BlockQ8_0x8, GROUP_ROWS, QK, QK_K};
use crate::matmul::TILE_ROWS;
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
        block.minus_offset16 = -16 * block.qs.iter().map(|&q| i32::from(q)).sum::<i32>();
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

/// The four bytes at `p` (activation bytes, or a pair of 16-bit group sums) in every
/// 32-bit lane.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn broadcast4<T>(p: *const T) -> __m256i {
    _mm256_set1_epi32(std::ptr::read_unaligned(p as *const i32))
}

/// `acc += ints · scale`, lane by lane (`ints` converted to floats).
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn accumulate(acc: &mut [f32; 8], ints: __m256i, scale: __m256) {
    let sum = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ints), scale, _mm256_loadu_ps(acc.as_ptr()));
    _mm256_storeu_ps(acc.as_mut_ptr(), sum);
}

/// Eight interleaved Q8_0 rows × any number of activation rows: `out[m][r] = Σ w[r] · x[m]`
/// (`x` and `out` the same length).
///
/// Each block's `|w|` is computed once into eight registers for every activation row;
/// `maddubs` takes `|w|` and `x` with `w`'s sign (read again from memory); its pairs (up to
/// 2 · 127² in 16 bits) are widened at once. Every accumulator lane is one weight row, as
/// in [`rows_q5_0x8`].
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn rows_q8_0x8(w: &[BlockQ8_0x8], x: &[&[ActQ8]], out: &mut [[f32; 8]]) {
    debug_assert_eq!(x.len(), out.len());
    let ones = _mm256_set1_epi16(1);
    out.fill([0.0; 8]);
    for (b, wb) in w.iter().enumerate() {
        prefetch_ahead(wb as *const BlockQ8_0x8 as *const i8, std::mem::size_of::<BlockQ8_0x8>());
        let signed = |j: usize| _mm256_loadu_si256(wb.qs.as_ptr().add(32 * j) as *const __m256i);
        let magnitudes: [__m256i; 8] = std::array::from_fn(|j| _mm256_sign_epi8(signed(j), signed(j)));
        let wd = _mm256_cvtph_ps(_mm_loadu_si128(wb.d.as_ptr() as *const __m128i));
        for (xm, acc) in x.iter().zip(out.iter_mut()) {
            let xb = xm.get_unchecked(b);
            let mut isum = _mm256_setzero_si256();
            for (j, magnitude) in magnitudes.iter().enumerate() {
                let xs = broadcast4(xb.qs.as_ptr().add(4 * j));
                let pairs = _mm256_maddubs_epi16(*magnitude, _mm256_sign_epi8(xs, signed(j)));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(pairs, ones));
            }
            accumulate(acc, isum, _mm256_mul_ps(wd, _mm256_set1_ps(xb.d)));
        }
    }
}

/// Eight interleaved Q5_0 rows × any number of activation rows: `out[m][r] = Σ w[r] · x[m]`
/// (`x` and `out` the same length).
///
/// Each block of the eight rows is decoded once into eight registers, which then meet
/// every activation row, so decoding costs the same for one row or sixteen. Weights are
/// taken as unsigned bytes `q + 16` (0..=31), so `maddubs` needs no sign tricks;
/// `-16 · Σ x` per block ([`ActQ8::minus_offset16`]) takes the offset back out. Four registers'
/// `maddubs` pairs add up in 16 bits without overflow (4 · 2 · 31 · 127 < 2¹⁵). Every lane
/// of the accumulator is one weight row, so no horizontal sums are needed, and a row's
/// result does not depend on the other rows.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn rows_q5_0x8(w: &[BlockQ5_0x8], x: &[&[ActQ8]], out: &mut [[f32; 8]]) {
    debug_assert_eq!(x.len(), out.len());
    let ones = _mm256_set1_epi16(1);
    let decoder = Q5_0Decoder::new();
    out.fill([0.0; 8]);
    for (b, wb) in w.iter().enumerate() {
        prefetch_ahead(wb as *const BlockQ5_0x8 as *const i8, std::mem::size_of::<BlockQ5_0x8>());
        let values = decoder.decode(wb);
        let wd = _mm256_cvtph_ps(_mm_loadu_si128(wb.d.as_ptr() as *const __m128i));
        for (xm, acc) in x.iter().zip(out.iter_mut()) {
            let xb = xm.get_unchecked(b);
            let mut pairs = [_mm256_setzero_si256(); 2];
            for (j, v) in values.iter().enumerate() {
                let xs = broadcast4(xb.qs.as_ptr().add(4 * j));
                pairs[j / 4] = _mm256_add_epi16(pairs[j / 4], _mm256_maddubs_epi16(*v, xs));
            }
            let isum = _mm256_add_epi32(_mm256_madd_epi16(pairs[0], ones), _mm256_madd_epi16(pairs[1], ones));
            let signed = _mm256_add_epi32(isum, broadcast4(&xb.minus_offset16 as *const i32));
            accumulate(acc, signed, _mm256_mul_ps(wd, _mm256_set1_ps(xb.d)));
        }
    }
}

/// Decodes an interleaved Q5_0 block into eight registers of unsigned bytes `q + 16`:
/// register `j`, lane `r` holds values `4j..4j + 4` of row `r`.
struct Q5_0Decoder {
    row_bit: __m256i,
    low4: __m256i,
    fifth: __m256i,
}

impl Q5_0Decoder {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn new() -> Self {
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
        Self { row_bit, low4: _mm256_set1_epi8(0x0F), fifth: _mm256_set1_epi8(0x10) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn decode(&self, wb: &BlockQ5_0x8) -> [__m256i; 8] {
        std::array::from_fn(|j| {
            let qs = _mm256_loadu_si256(wb.qs.as_ptr().add(32 * (j % 4)) as *const __m256i);
            let nibbles = if j < 4 { qs } else { _mm256_srli_epi16(qs, 4) };
            let bits = _mm256_set1_epi32(wb.qh[j] as i32);
            let has_fifth = _mm256_cmpeq_epi8(_mm256_and_si256(bits, self.row_bit), self.row_bit);
            _mm256_or_si256(_mm256_and_si256(nibbles, self.low4), _mm256_and_si256(has_fifth, self.fifth))
        })
    }
}

/// Weight blocks decoded at a time by [`rows_q5_0x8_wide`].
const WIDE_CHUNK: usize = 8;

/// Groups of eight activation rows in one call of [`rows_q5_0x8_wide`] (with one group it is
/// no faster than [`rows_q5_0x8`]).
pub const WIDE_GROUPS: usize = 2;

/// Eight interleaved Q5_0 rows × two groups of eight activation rows laid side by side
/// ([`ActQ8x8`]): `out[8g + i][r] = Σ w[r] · x[g] row i`.
///
/// The transpose of [`rows_q5_0x8`], for batches of eight rows or more: here the
/// activation rows fill the lanes and four decoded weight bytes are broadcast, so one
/// broadcast feeds two registers of eight rows (in [`rows_q5_0x8`] every activation row
/// needs its own eight broadcasts per block). Weight blocks are decoded `WIDE_CHUNK` at a
/// time into a buffer, then each weight row walks them with its sums in registers. Every
/// (weight row, activation row) pair gets the same integer sum and the same float steps in
/// the same order as in [`rows_q5_0x8`], so results are bit-identical to it.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn rows_q5_0x8_wide(
    w: &[BlockQ5_0x8],
    x: [&[ActQ8x8]; WIDE_GROUPS],
    out: &mut [[f32; 8]; GROUP_ROWS * WIDE_GROUPS],
) {
    let ones = _mm256_set1_epi16(1);
    let decoder = Q5_0Decoder::new();
    let mut sums = [[_mm256_setzero_ps(); WIDE_GROUPS]; GROUP_ROWS];
    let mut decoded = [[_mm256_setzero_si256(); 8]; WIDE_CHUNK];
    let mut scales = [[0f32; GROUP_ROWS]; WIDE_CHUNK];
    for first in (0..w.len()).step_by(WIDE_CHUNK) {
        let chunk = &w[first..(first + WIDE_CHUNK).min(w.len())];
        for (c, wb) in chunk.iter().enumerate() {
            prefetch_ahead(wb as *const BlockQ5_0x8 as *const i8, std::mem::size_of::<BlockQ5_0x8>());
            decoded[c] = decoder.decode(wb);
            _mm256_storeu_ps(scales[c].as_mut_ptr(), _mm256_cvtph_ps(_mm_loadu_si128(wb.d.as_ptr() as *const __m128i)));
        }
        for (r, row_sums) in sums.iter_mut().enumerate() {
            // Kept a run-time value: unrolled over the eight rows, the loop spills.
            let r = std::hint::black_box(r);
            let mut acc = *row_sums;
            for c in 0..chunk.len() {
                let weights = decoded[c].as_ptr() as *const i32;
                let mut pairs = [[_mm256_setzero_si256(); 2]; WIDE_GROUPS];
                for j in 0..8 {
                    let wj = _mm256_set1_epi32(*weights.add(8 * j + r));
                    for g in 0..WIDE_GROUPS {
                        let xs = _mm256_load_si256(x[g].get_unchecked(first + c).qs[j].as_ptr() as *const __m256i);
                        pairs[g][j / 4] = _mm256_add_epi16(pairs[g][j / 4], _mm256_maddubs_epi16(wj, xs));
                    }
                }
                let wd = _mm256_set1_ps(scales[c][r]);
                for g in 0..WIDE_GROUPS {
                    let xb = x[g].get_unchecked(first + c);
                    let isum =
                        _mm256_add_epi32(_mm256_madd_epi16(pairs[g][0], ones), _mm256_madd_epi16(pairs[g][1], ones));
                    let signed =
                        _mm256_add_epi32(isum, _mm256_load_si256(xb.minus_offset16.as_ptr() as *const __m256i));
                    let scale = _mm256_mul_ps(wd, _mm256_load_ps(xb.d.as_ptr()));
                    acc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(signed), scale, acc[g]);
                }
            }
            *row_sums = acc;
        }
    }
    for (r, row_sums) in sums.iter().enumerate() {
        for (g, sum) in row_sums.iter().enumerate() {
            let mut lanes = [0f32; GROUP_ROWS];
            _mm256_storeu_ps(lanes.as_mut_ptr(), *sum);
            for (i, &v) in lanes.iter().enumerate() {
                out[GROUP_ROWS * g + i][r] = v;
            }
        }
    }
}

/// Byte shuffles that spread pair `e` of every 32-bit lane of a 16-bit pair register
/// (scales or mins in `pair_index` order) over the whole lane: `[s_e, s_e]`.
const SPREAD_PAIR: [[u8; 32]; 2] = {
    let mut masks = [[0u8; 32]; 2];
    let mut e = 0;
    while e < 2 {
        let mut byte = 0;
        while byte < 32 {
            // Within each 128-bit half: lane (byte % 16) / 4, its pair e, low then high byte.
            masks[e][byte] = (((byte % 16) / 4) * 4 + 2 * e + byte % 2) as u8;
            byte += 1;
        }
        e += 1;
    }
    masks
};

/// [`SPREAD_PAIR`] as registers.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn pair_spreaders() -> [__m256i; 2] {
    SPREAD_PAIR.map(|mask| _mm256_loadu_si256(mask.as_ptr() as *const __m256i))
}

/// Eight interleaved Q6_K rows × any number of activation rows (at most
/// [`TILE_ROWS`]):
/// `out[m][r] = Σ w[r] · x[m]`.
///
/// Each 32-element slice of the eight rows is decoded once into eight registers, which then
/// meet every activation row; the rows' integer sums wait in a small array. Values are
/// taken unsigned (0..=63); the offset of 32 comes back out through the group sums
/// (`32 · Σ_g scale_g · Σ x`). Two registers' `maddubs` pairs add up in 16 bits
/// (2 · 2 · 63 · 127 < 2¹⁵) before one `madd` with the rows' group scales (one per lane).
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn rows_q6k_x8(w: &[BlockQ6Kx8], x: &[&[ActQ8K]], out: &mut [[f32; 8]]) {
    debug_assert!(x.len() == out.len() && x.len() <= TILE_ROWS);
    let low4 = _mm256_set1_epi8(0x0F);
    let bits45 = _mm256_set1_epi8(0x30);
    let spread = pair_spreaders();
    out.fill([0.0; 8]);
    let mut isum = [_mm256_setzero_si256(); TILE_ROWS];
    for (b, wb) in w.iter().enumerate() {
        prefetch_ahead(wb as *const BlockQ6Kx8 as *const i8, std::mem::size_of::<BlockQ6Kx8>());
        isum[..x.len()].fill(_mm256_setzero_si256());
        for half in 0..2 {
            // Elements 128·half + 32s + 4i + t: low bits in ql register 16·half + 8·(s % 2) + i
            // (low nibbles for s < 2), high bits 2s..2s+2 of qh register 8·half + i.
            for s in 0..4 {
                let values: [__m256i; 8] = std::array::from_fn(|i| {
                    let ql =
                        _mm256_loadu_si256(wb.ql.as_ptr().add(32 * (16 * half + 8 * (s % 2) + i)) as *const __m256i);
                    let qh = _mm256_loadu_si256(wb.qh.as_ptr().add(32 * (8 * half + i)) as *const __m256i);
                    let low = _mm256_and_si256(if s < 2 { ql } else { _mm256_srli_epi16(ql, 4) }, low4);
                    let high = match s {
                        0 => _mm256_slli_epi16(qh, 4),
                        1 => _mm256_slli_epi16(qh, 2),
                        2 => qh,
                        _ => _mm256_srli_epi16(qh, 2),
                    };
                    _mm256_or_si256(low, _mm256_and_si256(high, bits45))
                });
                let k = 4 * half + s;
                let scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(wb.scales.as_ptr().add(16 * k) as *const __m128i));
                let scale = [_mm256_shuffle_epi8(scales, spread[0]), _mm256_shuffle_epi8(scales, spread[1])];
                for (xm, sum) in x.iter().zip(isum.iter_mut()) {
                    let xb = xm.get_unchecked(b);
                    let group_sums = broadcast4(xb.bsums.as_ptr().add(2 * k));
                    let offset = _mm256_slli_epi32(_mm256_madd_epi16(scales, group_sums), 5);
                    let mut total = _mm256_sub_epi32(*sum, offset);
                    for p in 0..4 {
                        let at = 128 * half + 32 * s + 8 * p;
                        let pairs = _mm256_add_epi16(
                            _mm256_maddubs_epi16(values[2 * p], broadcast4(xb.qs.as_ptr().add(at))),
                            _mm256_maddubs_epi16(values[2 * p + 1], broadcast4(xb.qs.as_ptr().add(at + 4))),
                        );
                        total = _mm256_add_epi32(total, _mm256_madd_epi16(pairs, scale[p / 2]));
                    }
                    *sum = total;
                }
            }
        }
        let d = _mm256_cvtph_ps(_mm_loadu_si128(wb.d.as_ptr() as *const __m128i));
        for ((xm, sum), acc) in x.iter().zip(&isum).zip(out.iter_mut()) {
            accumulate(acc, *sum, _mm256_mul_ps(d, _mm256_set1_ps(xm.get_unchecked(b).d)));
        }
    }
}

/// Eight interleaved Q4_K rows × any number of activation rows (at most
/// [`TILE_ROWS`]):
/// `out[m][r] = Σ w[r] · x[m]`.
///
/// Each sub-block (32 elements) of the eight rows is decoded once into eight registers of
/// nibbles, which then meet every activation row; the rows' integer sums wait in small
/// arrays. The eight registers' `maddubs` pairs add up in 16 bits (8 · 2 · 15 · 127 < 2¹⁵),
/// then one `madd` with the rows' scales (one per lane) widens them. The mins term
/// `Σ min_j · Σ x` comes from the activations' group sums.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn rows_q4k_x8(w: &[BlockQ4Kx8], x: &[&[ActQ8K]], out: &mut [[f32; 8]]) {
    debug_assert!(x.len() == out.len() && x.len() <= TILE_ROWS);
    let low4 = _mm256_set1_epi8(0x0F);
    let spread = pair_spreaders();
    out.fill([0.0; 8]);
    let mut isum = [_mm256_setzero_si256(); TILE_ROWS];
    let mut min_sum = [_mm256_setzero_si256(); TILE_ROWS];
    for (b, wb) in w.iter().enumerate() {
        prefetch_ahead(wb as *const BlockQ4Kx8 as *const i8, std::mem::size_of::<BlockQ4Kx8>());
        isum[..x.len()].fill(_mm256_setzero_si256());
        min_sum[..x.len()].fill(_mm256_setzero_si256());
        for c in 0..4 {
            let scales = _mm256_cvtepu8_epi16(_mm_loadu_si128(wb.scales.as_ptr().add(16 * c) as *const __m128i));
            let mins = _mm256_cvtepu8_epi16(_mm_loadu_si128(wb.mins.as_ptr().add(16 * c) as *const __m128i));
            for (e, &spread_e) in spread.iter().enumerate() {
                let j = 2 * c + e;
                let values: [__m256i; 8] = std::array::from_fn(|i| {
                    let q = _mm256_loadu_si256(wb.qs.as_ptr().add(256 * c + 32 * i) as *const __m256i);
                    _mm256_and_si256(if e == 0 { q } else { _mm256_srli_epi16(q, 4) }, low4)
                });
                let scale = _mm256_shuffle_epi8(scales, spread_e);
                let min = _mm256_shuffle_epi8(mins, spread_e);
                for ((xm, sum), msum) in x.iter().zip(isum.iter_mut()).zip(min_sum.iter_mut()) {
                    let xb = xm.get_unchecked(b);
                    let mut pairs = _mm256_setzero_si256();
                    for (i, v) in values.iter().enumerate() {
                        let xs = broadcast4(xb.qs.as_ptr().add(32 * j + 4 * i));
                        pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(*v, xs));
                    }
                    *sum = _mm256_add_epi32(*sum, _mm256_madd_epi16(pairs, scale));
                    let group_sums = broadcast4(xb.bsums.as_ptr().add(2 * j));
                    *msum = _mm256_add_epi32(*msum, _mm256_madd_epi16(min, group_sums));
                }
            }
        }
        let d = _mm256_cvtph_ps(_mm_loadu_si128(wb.d.as_ptr() as *const __m128i));
        let dmin = _mm256_cvtph_ps(_mm_loadu_si128(wb.dmin.as_ptr() as *const __m128i));
        for (((xm, sum), msum), acc) in x.iter().zip(&isum).zip(&min_sum).zip(out.iter_mut()) {
            let xd = _mm256_set1_ps(xm.get_unchecked(b).d);
            let total = _mm256_fmadd_ps(_mm256_cvtepi32_ps(*sum), _mm256_mul_ps(d, xd), _mm256_loadu_ps(acc.as_ptr()));
            let total = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(*msum), _mm256_mul_ps(dmin, xd), total);
            _mm256_storeu_ps(acc.as_mut_ptr(), total);
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

/// `e^x` lane by lane, within 2 ulp of `f32::exp` for `x` in [-87.3, 88.3] (clamped outside:
/// tiny results flush towards zero, huge ones stay finite).
///
/// The usual range reduction `x = n · ln 2 + r` (`|r| ≤ ln 2 / 2`, `ln 2` in two parts),
/// Cephes' degree-6 polynomial for `e^r`, and `2^n` built in the exponent bits.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn exp_ps(x: __m256) -> __m256 {
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3)), _mm256_set1_ps(88.3));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm256_set1_ps(1.987_569_1e-4);
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let e_r = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0));
    let two_n = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)));
    _mm256_mul_ps(e_r, _mm256_castsi256_ps(two_n))
}

/// `gate[i] = silu(gate[i]) · up[i]` (`silu(g) = g / (1 + e^-g)`), 8 lanes at a time; a
/// ragged end goes through the same lanes zero-padded, so every element's result is the
/// same wherever it lies.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn silu_mul(gate: &mut [f32], up: &[f32]) {
    let one = _mm256_set1_ps(1.0);
    let silu_mul8 = |g: __m256, u: __m256| {
        let e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), g));
        _mm256_div_ps(_mm256_mul_ps(g, u), _mm256_add_ps(one, e))
    };
    let mut gates = gate.chunks_exact_mut(8);
    let mut ups = up.chunks_exact(8);
    for (g, u) in (&mut gates).zip(&mut ups) {
        let out = silu_mul8(_mm256_loadu_ps(g.as_ptr()), _mm256_loadu_ps(u.as_ptr()));
        _mm256_storeu_ps(g.as_mut_ptr(), out);
    }
    let (g_tail, u_tail) = (gates.into_remainder(), ups.remainder());
    if !g_tail.is_empty() {
        let (mut g8, mut u8) = ([0.0f32; 8], [0.0f32; 8]);
        g8[..g_tail.len()].copy_from_slice(g_tail);
        u8[..u_tail.len()].copy_from_slice(u_tail);
        let out = silu_mul8(_mm256_loadu_ps(g8.as_ptr()), _mm256_loadu_ps(u8.as_ptr()));
        _mm256_storeu_ps(g8.as_mut_ptr(), out);
        g_tail.copy_from_slice(&g8[..g_tail.len()]);
    }
}

/// `x ← softmax(x)` with [`exp_ps`]; a ragged end goes through lanes padded with the
/// maximum, and only its real lanes count in the sum.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let max8 = _mm256_set1_ps(max);
    let mut sums = _mm256_setzero_ps();
    let mut chunks = x.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(chunk.as_ptr()), max8));
        _mm256_storeu_ps(chunk.as_mut_ptr(), e);
        sums = _mm256_add_ps(sums, e);
    }
    let tail = chunks.into_remainder();
    let mut total = hsum(sums);
    if !tail.is_empty() {
        let mut padded = [max; 8];
        padded[..tail.len()].copy_from_slice(tail);
        _mm256_storeu_ps(padded.as_mut_ptr(), exp_ps(_mm256_sub_ps(_mm256_loadu_ps(padded.as_ptr()), max8)));
        tail.copy_from_slice(&padded[..tail.len()]);
        total += tail.iter().sum::<f32>();
    }
    let inv = 1.0 / total;
    let inv8 = _mm256_set1_ps(inv);
    let mut chunks = x.chunks_exact_mut(8);
    for chunk in &mut chunks {
        _mm256_storeu_ps(chunk.as_mut_ptr(), _mm256_mul_ps(_mm256_loadu_ps(chunk.as_ptr()), inv8));
    }
    for v in chunks.into_remainder() {
        *v *= inv;
    }
}
