//! AVX2 + FMA + F16C kernels.
//!
//! Every function here is a *safe* function compiled with those target features: its body
//! touches memory only through references (bounds-checked slices, and the fixed-size loads
//! and stores below), so it is sound for every input on a CPU that has the features. Calling
//! one from code compiled without them is `unsafe`, and sound exactly when the CPU has them,
//! which an AVX2 [`crate::Isa`] proves: only [`crate::Isa::available`] makes one, after
//! finding AVX2, FMA and F16C.
//!
//! The matmul kernels work on eight interleaved weight rows × up to [`TILE_ROWS`] activation
//! rows: each weight slice is loaded and decoded once and multiplied with every activation
//! row. The arithmetic of each (activation row, weight row) pair is the same sequence of
//! instructions however many rows there are, so a row's result does not depend on how many
//! other rows share the batch (batch invariance).

mod attention;
mod stored;

use std::arch::x86_64::*;

use half::f16;

pub(crate) use attention::score_tail;
pub use attention::{
    softmax_steps, tile_accumulate, tile_scores, widen_f16, widen_f16_rows, widen_q8_groups, widen_q8_rows,
};
pub use stored::{stored_accumulate, stored_scores, STORED_BLOCK};

use crate::formats::{ActQ8, ActQ8K, ActQ8x8, BlockQ4Kx8, BlockQ5_0x8, BlockQ6Kx8, BlockQ8_0x8, GROUP_ROWS, QK, QK_K};
use crate::matmul::TILE_ROWS;
use crate::scalar::act_scale;

/// Element types of plain old data: every byte initialised, every bit pattern a valid value.
/// Only these are read or written as raw SIMD bytes.
pub(crate) trait Plain: Copy {}
impl Plain for i8 {}
impl Plain for u8 {}
impl Plain for i16 {}
impl Plain for i32 {}
impl Plain for u32 {}
impl Plain for f16 {}

/// The 32 bytes of `v` as an integer register.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn load256<T: Plain, const N: usize>(v: &[T; N]) -> __m256i {
    const { assert!(std::mem::size_of::<[T; N]>() == 32) };
    // SAFETY: `v` is a live reference to exactly 32 initialised bytes (checked at compile
    // time above, every byte initialised by `Plain`); the unaligned load needs no alignment.
    unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
}

/// Stores an integer register into the 32 bytes of `v`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn store256<T: Plain, const N: usize>(v: &mut [T; N], x: __m256i) {
    const { assert!(std::mem::size_of::<[T; N]>() == 32) };
    // SAFETY: `v` is an exclusive reference to exactly 32 bytes (checked at compile time),
    // any bit pattern is a valid `T` (`Plain`); the unaligned store needs no alignment.
    unsafe { _mm256_storeu_si256(v.as_mut_ptr().cast(), x) }
}

/// The 16 bytes of `v` as a 128-bit integer register.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load128<T: Plain, const N: usize>(v: &[T; N]) -> __m128i {
    const { assert!(std::mem::size_of::<[T; N]>() == 16) };
    // SAFETY: as in `load256`, for exactly 16 bytes.
    unsafe { _mm_loadu_si128(v.as_ptr().cast()) }
}

/// The four bytes of `v` (activation bytes, or a pair of 16-bit group sums) in every 32-bit
/// lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn broadcast4<T: Plain, const N: usize>(v: &[T; N]) -> __m256i {
    const { assert!(std::mem::size_of::<[T; N]>() == 4) };
    // SAFETY: `v` is a live reference to exactly 4 initialised bytes (checked at compile
    // time above, `Plain`); `read_unaligned` needs no alignment.
    _mm256_set1_epi32(unsafe { std::ptr::read_unaligned(v.as_ptr().cast::<i32>()) })
}

/// Eight floats as a register.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn load_ps(v: &[f32; 8]) -> __m256 {
    // SAFETY: `v` is a live reference to 8 floats; the unaligned load needs no alignment.
    unsafe { _mm256_loadu_ps(v.as_ptr()) }
}

/// Stores a register into eight floats.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn store_ps(v: &mut [f32; 8], x: __m256) {
    // SAFETY: `v` is an exclusive reference to 8 floats; the unaligned store needs no alignment.
    unsafe { _mm256_storeu_ps(v.as_mut_ptr(), x) }
}

/// Eight half-precision scales as floats.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn load_f16x8(v: &[f16; 8]) -> __m256 {
    _mm256_cvtph_ps(load128(v))
}

/// The lanes of an integer register.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn lanes_i32(x: __m256i) -> [i32; 8] {
    let mut lanes = [0i32; 8];
    store256(&mut lanes, x);
    lanes
}

/// How far ahead of the block being read the weight stream is prefetched.
const PREFETCH_BYTES: usize = 2048;

/// Prefetches the cache lines `PREFETCH_BYTES` ahead of `block`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn prefetch_ahead<T>(block: &T) {
    let start = (block as *const T).cast::<i8>();
    for offset in (0..std::mem::size_of::<T>()).step_by(64) {
        // A prefetch is a hint that never faults, so any address will do: `wrapping_add`, as
        // it may point past the weights' end.
        _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(PREFETCH_BYTES + offset));
    }
}

/// Asks for every cache line of `data` to be brought into the cache ahead of its reads.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn prefetch<T>(data: &[T]) {
    let start = data.as_ptr().cast::<i8>();
    for offset in (0..std::mem::size_of_val(data)).step_by(64) {
        // A prefetch is a hint that never faults; every address here is inside `data`.
        _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset));
    }
}

/// Sum of the 8 lanes, always in the same order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn hsum(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps(v, 1);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Largest lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn hmax(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps(v, 1);
    let m = _mm_max_ps(lo, hi);
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    let m = _mm_max_ss(m, _mm_movehdup_ps(m));
    _mm_cvtss_f32(m)
}

/// Quantizes 32 floats with inverse scale `id` into 32 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn quantize_32(x: &[f32; 32], id: f32, out: &mut [i8; 32]) {
    let mul = _mm256_set1_ps(id);
    let eights = x.as_chunks::<8>().0;
    let round = |v: &[f32; 8]| {
        let v = _mm256_mul_ps(load_ps(v), mul);
        _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
    };
    let (r0, r1, r2, r3) = (round(&eights[0]), round(&eights[1]), round(&eights[2]), round(&eights[3]));
    let p01 = _mm256_packs_epi32(r0, r1);
    let p23 = _mm256_packs_epi32(r2, r3);
    let bytes = _mm256_packs_epi16(p01, p23);
    // The packs interleave 128-bit lanes; put the 32-bit groups back in order.
    let ordered = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    store256(out, ordered);
}

/// Largest magnitude among the floats of `x` (its length a multiple of 8; a ragged end is
/// ignored).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn amax(x: &[f32]) -> f32 {
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_setzero_ps();
    for v in x.as_chunks::<8>().0 {
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, load_ps(v)));
    }
    hmax(m)
}

/// AVX2 version of [`crate::scalar::quantize_q8`]; produces identical bytes.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn quantize_q8(x: &[f32], out: &mut [ActQ8]) {
    for (block, values) in out.iter_mut().zip(x.as_chunks::<QK>().0) {
        let (d, id) = act_scale(amax(values));
        block.d = d;
        quantize_32(values, id, &mut block.qs);
        block.minus_offset16 = -16 * block.qs.iter().map(|&q| i32::from(q)).sum::<i32>();
    }
}

/// AVX2 version of [`crate::scalar::quantize_q8k`]; produces identical bytes.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn quantize_q8k(x: &[f32], out: &mut [ActQ8K]) {
    for (block, values) in out.iter_mut().zip(x.as_chunks::<QK_K>().0) {
        let (d, id) = act_scale(amax(values));
        block.d = d;
        for (piece, qs) in values.as_chunks::<QK>().0.iter().zip(block.qs.as_chunks_mut::<QK>().0) {
            quantize_32(piece, id, qs);
        }
        for (g, sum) in block.bsums.iter_mut().enumerate() {
            *sum = block.qs[16 * g..16 * g + 16].iter().map(|&q| i16::from(q)).sum();
        }
    }
}

/// Panics unless every activation row has at least `blocks` blocks, so that the kernels
/// may read block `b < blocks` of a row without checking each time.
#[inline]
fn check_rows<A>(x: &[&[A]], blocks: usize) {
    assert!(x.iter().all(|row| row.len() >= blocks), "an activation row is shorter than the weight rows");
}

/// `acc += ints · scale`, lane by lane (`ints` converted to floats).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn accumulate(acc: &mut [f32; 8], ints: __m256i, scale: __m256) {
    let sum = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ints), scale, load_ps(acc));
    store_ps(acc, sum);
}

/// Eight interleaved Q8_0 rows × any number of activation rows: `out[m][r] = Σ w[r] · x[m]`,
/// for `m` below the shorter of `x` and `out`. Panics if an activation row has fewer blocks
/// than `w`.
///
/// Each block's `|w|` is computed once into eight registers for every activation row;
/// `maddubs` takes `|w|` and `x` with `w`'s sign (read again from memory); its pairs (up to
/// 2 · 127² in 16 bits) are widened at once. Every accumulator lane is one weight row, as
/// in [`rows_q5_0x8`].
#[target_feature(enable = "avx2,fma,f16c")]
pub fn rows_q8_0x8(w: &[BlockQ8_0x8], x: &[&[ActQ8]], out: &mut [[f32; 8]]) {
    check_rows(x, w.len());
    let ones = _mm256_set1_epi16(1);
    out.fill([0.0; 8]);
    for (b, wb) in w.iter().enumerate() {
        prefetch_ahead(wb);
        let registers = wb.qs.as_chunks::<32>().0;
        let signed = |j: usize| load256(&registers[j]);
        let magnitudes: [__m256i; 8] = std::array::from_fn(|j| _mm256_sign_epi8(signed(j), signed(j)));
        let wd = load_f16x8(&wb.d);
        for (xm, acc) in x.iter().zip(out.iter_mut()) {
            // SAFETY: `b < w.len()`, and every row of `x` has at least `w.len()` blocks
            // (`check_rows` above).
            let xb = unsafe { xm.get_unchecked(b) };
            let words = xb.qs.as_chunks::<4>().0;
            let mut isum = _mm256_setzero_si256();
            for (j, magnitude) in magnitudes.iter().enumerate() {
                let pairs = _mm256_maddubs_epi16(*magnitude, _mm256_sign_epi8(broadcast4(&words[j]), signed(j)));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(pairs, ones));
            }
            accumulate(acc, isum, _mm256_mul_ps(wd, _mm256_set1_ps(xb.d)));
        }
    }
}

/// Eight interleaved Q5_0 rows × any number of activation rows: `out[m][r] = Σ w[r] · x[m]`,
/// for `m` below the shorter of `x` and `out`. Panics if an activation row has fewer blocks
/// than `w`.
///
/// Each block of the eight rows is decoded once into eight registers, which then meet
/// every activation row, so decoding costs the same for one row or sixteen. Weights are
/// taken as unsigned bytes `q + 16` (0..=31), so `maddubs` needs no sign tricks;
/// `-16 · Σ x` per block ([`ActQ8::minus_offset16`]) takes the offset back out. Four registers'
/// `maddubs` pairs add up in 16 bits without overflow (4 · 2 · 31 · 127 < 2¹⁵). Every lane
/// of the accumulator is one weight row, so no horizontal sums are needed, and a row's
/// result does not depend on the other rows.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn rows_q5_0x8(w: &[BlockQ5_0x8], x: &[&[ActQ8]], out: &mut [[f32; 8]]) {
    check_rows(x, w.len());
    let ones = _mm256_set1_epi16(1);
    let decoder = Q5_0Decoder::new();
    out.fill([0.0; 8]);
    for (b, wb) in w.iter().enumerate() {
        prefetch_ahead(wb);
        let values = decoder.decode(wb);
        let wd = load_f16x8(&wb.d);
        for (xm, acc) in x.iter().zip(out.iter_mut()) {
            // SAFETY: `b < w.len()`, and every row of `x` has at least `w.len()` blocks
            // (`check_rows` above).
            let xb = unsafe { xm.get_unchecked(b) };
            let words = xb.qs.as_chunks::<4>().0;
            let mut pairs = [_mm256_setzero_si256(); 2];
            for (j, v) in values.iter().enumerate() {
                pairs[j / 4] = _mm256_add_epi16(pairs[j / 4], _mm256_maddubs_epi16(*v, broadcast4(&words[j])));
            }
            let isum = _mm256_add_epi32(_mm256_madd_epi16(pairs[0], ones), _mm256_madd_epi16(pairs[1], ones));
            let signed = _mm256_add_epi32(isum, _mm256_set1_epi32(xb.minus_offset16));
            accumulate(acc, signed, _mm256_mul_ps(wd, _mm256_set1_ps(xb.d)));
        }
    }
}

/// Decodes an interleaved Q5_0 block into eight registers of unsigned bytes `q + 16`:
/// register `j`, lane `r` holds values `4j..4j + 4` of row `r`.
pub(crate) struct Q5_0Decoder {
    row_bit: __m256i,
    low4: __m256i,
    fifth: __m256i,
}

impl Q5_0Decoder {
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) fn new() -> Self {
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
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) fn decode(&self, wb: &BlockQ5_0x8) -> [__m256i; 8] {
        let registers = wb.qs.as_chunks::<32>().0;
        std::array::from_fn(|j| {
            let qs = load256(&registers[j % 4]);
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
/// ([`ActQ8x8`]): `out[8g + i][r] = Σ w[r] · x[g] row i`. Panics if a group has fewer
/// blocks than `w`.
///
/// The transpose of [`rows_q5_0x8`], for batches of eight rows or more: here the
/// activation rows fill the lanes and four decoded weight bytes are broadcast, so one
/// broadcast feeds two registers of eight rows (in [`rows_q5_0x8`] every activation row
/// needs its own eight broadcasts per block). Weight blocks are decoded `WIDE_CHUNK` at a
/// time into a buffer, then each weight row walks them with its sums in registers. Every
/// (weight row, activation row) pair gets the same integer sum and the same float steps in
/// the same order as in [`rows_q5_0x8`], so results are bit-identical to it.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn rows_q5_0x8_wide(
    w: &[BlockQ5_0x8],
    x: [&[ActQ8x8]; WIDE_GROUPS],
    out: &mut [[f32; 8]; GROUP_ROWS * WIDE_GROUPS],
) {
    let ones = _mm256_set1_epi16(1);
    let decoder = Q5_0Decoder::new();
    let mut sums = [[_mm256_setzero_ps(); WIDE_GROUPS]; GROUP_ROWS];
    // Register `j` of decoded block `c`, lane by lane: `decoded[c][j][r]` is row `r`'s
    // four bytes.
    let mut decoded = [[[0i32; GROUP_ROWS]; 8]; WIDE_CHUNK];
    let mut scales = [[0f32; GROUP_ROWS]; WIDE_CHUNK];
    for first in (0..w.len()).step_by(WIDE_CHUNK) {
        let chunk = &w[first..(first + WIDE_CHUNK).min(w.len())];
        let n = chunk.len();
        // (Closures handed to `array::from_fn` or `map` here would not be inlined: they
        // carry the target features, those functions do not.)
        let x_chunk: [&[ActQ8x8]; WIDE_GROUPS] = [&x[0][first..first + n], &x[1][first..first + n]];
        for ((wb, lanes), scale) in chunk.iter().zip(decoded.iter_mut()).zip(scales.iter_mut()) {
            prefetch_ahead(wb);
            for (register_lanes, register) in lanes.iter_mut().zip(decoder.decode(wb)) {
                *register_lanes = lanes_i32(register);
            }
            store_ps(scale, load_f16x8(&wb.d));
        }
        for (r, row_sums) in sums.iter_mut().enumerate() {
            // Kept a run-time value: unrolled over the eight rows, the loop spills.
            let r = std::hint::black_box(r) % GROUP_ROWS;
            let mut acc = *row_sums;
            for c in 0..n.min(WIDE_CHUNK) {
                let (lanes, scale) = (&decoded[c], &scales[c]);
                let xb: [&ActQ8x8; WIDE_GROUPS] = [&x_chunk[0][c], &x_chunk[1][c]];
                let mut pairs = [[_mm256_setzero_si256(); 2]; WIDE_GROUPS];
                for (j, register) in lanes.iter().enumerate() {
                    let wj = _mm256_set1_epi32(register[r]);
                    for (g, group_pairs) in pairs.iter_mut().enumerate() {
                        let xs = load256(&xb[g].qs[j]);
                        group_pairs[j / 4] = _mm256_add_epi16(group_pairs[j / 4], _mm256_maddubs_epi16(wj, xs));
                    }
                }
                let wd = _mm256_set1_ps(scale[r]);
                for g in 0..WIDE_GROUPS {
                    let isum =
                        _mm256_add_epi32(_mm256_madd_epi16(pairs[g][0], ones), _mm256_madd_epi16(pairs[g][1], ones));
                    let signed = _mm256_add_epi32(isum, load256(&xb[g].minus_offset16));
                    let scale = _mm256_mul_ps(wd, load_ps(&xb[g].d));
                    acc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(signed), scale, acc[g]);
                }
            }
            *row_sums = acc;
        }
    }
    for (r, row_sums) in sums.iter().enumerate() {
        for (g, sum) in row_sums.iter().enumerate() {
            let mut lanes = [0f32; GROUP_ROWS];
            store_ps(&mut lanes, *sum);
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
#[target_feature(enable = "avx2,fma,f16c")]
fn pair_spreaders() -> [__m256i; 2] {
    [load256(&SPREAD_PAIR[0]), load256(&SPREAD_PAIR[1])]
}

/// Eight interleaved Q6_K rows × up to [`TILE_ROWS`] activation rows:
/// `out[m][r] = Σ w[r] · x[m]`, for `m` below the shorter of `x` and `out`. Panics if `x`
/// has more than [`TILE_ROWS`] rows or an activation row fewer blocks than `w`.
///
/// Each 32-element slice of the eight rows is decoded once into eight registers, which then
/// meet every activation row; the rows' integer sums wait in a small array. Values are
/// taken unsigned (0..=63); the offset of 32 comes back out through the group sums
/// (`32 · Σ_g scale_g · Σ x`). Two registers' `maddubs` pairs add up in 16 bits
/// (2 · 2 · 63 · 127 < 2¹⁵) before one `madd` with the rows' group scales (one per lane).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn rows_q6k_x8(w: &[BlockQ6Kx8], x: &[&[ActQ8K]], out: &mut [[f32; 8]]) {
    assert!(x.len() <= TILE_ROWS, "{} activation rows in one tile", x.len());
    check_rows(x, w.len());
    let low4 = _mm256_set1_epi8(0x0F);
    let bits45 = _mm256_set1_epi8(0x30);
    let spread = pair_spreaders();
    out.fill([0.0; 8]);
    let mut isum = [_mm256_setzero_si256(); TILE_ROWS];
    for (b, wb) in w.iter().enumerate() {
        prefetch_ahead(wb);
        let (ql, qh) = (wb.ql.as_chunks::<32>().0, wb.qh.as_chunks::<32>().0);
        let group_scales = wb.scales.as_chunks::<16>().0;
        isum[..x.len()].fill(_mm256_setzero_si256());
        for half in 0..2 {
            // Elements 128·half + 32s + 4i + t: low bits in ql register 16·half + 8·(s % 2) + i
            // (low nibbles for s < 2), high bits 2s..2s+2 of qh register 8·half + i.
            for s in 0..4 {
                let values: [__m256i; 8] = std::array::from_fn(|i| {
                    let low_bits = load256(&ql[16 * half + 8 * (s % 2) + i]);
                    let high_bits = load256(&qh[8 * half + i]);
                    let low = _mm256_and_si256(if s < 2 { low_bits } else { _mm256_srli_epi16(low_bits, 4) }, low4);
                    let high = match s {
                        0 => _mm256_slli_epi16(high_bits, 4),
                        1 => _mm256_slli_epi16(high_bits, 2),
                        2 => high_bits,
                        _ => _mm256_srli_epi16(high_bits, 2),
                    };
                    _mm256_or_si256(low, _mm256_and_si256(high, bits45))
                });
                let k = 4 * half + s;
                let scales = _mm256_cvtepi8_epi16(load128(&group_scales[k]));
                let scale = [_mm256_shuffle_epi8(scales, spread[0]), _mm256_shuffle_epi8(scales, spread[1])];
                for (xm, sum) in x.iter().zip(isum.iter_mut()) {
                    // SAFETY: `b < w.len()`, and every row of `x` has at least `w.len()` blocks
                    // (`check_rows` above).
                    let xb = unsafe { xm.get_unchecked(b) };
                    let words = xb.qs.as_chunks::<4>().0;
                    let group_sums = broadcast4(&xb.bsums.as_chunks::<2>().0[k]);
                    let offset = _mm256_slli_epi32(_mm256_madd_epi16(scales, group_sums), 5);
                    let mut total = _mm256_sub_epi32(*sum, offset);
                    for p in 0..4 {
                        let at = (128 * half + 32 * s + 8 * p) / 4;
                        let pairs = _mm256_add_epi16(
                            _mm256_maddubs_epi16(values[2 * p], broadcast4(&words[at])),
                            _mm256_maddubs_epi16(values[2 * p + 1], broadcast4(&words[at + 1])),
                        );
                        total = _mm256_add_epi32(total, _mm256_madd_epi16(pairs, scale[p / 2]));
                    }
                    *sum = total;
                }
            }
        }
        let d = load_f16x8(&wb.d);
        for ((xm, sum), acc) in x.iter().zip(&isum).zip(out.iter_mut()) {
            accumulate(acc, *sum, _mm256_mul_ps(d, _mm256_set1_ps(xm[b].d)));
        }
    }
}

/// Eight interleaved Q4_K rows × up to [`TILE_ROWS`] activation rows:
/// `out[m][r] = Σ w[r] · x[m]`, for `m` below the shorter of `x` and `out`. Panics if `x`
/// has more than [`TILE_ROWS`] rows or an activation row fewer blocks than `w`.
///
/// Each sub-block (32 elements) of the eight rows is decoded once into eight registers of
/// nibbles, which then meet every activation row; the rows' integer sums wait in small
/// arrays. The eight registers' `maddubs` pairs add up in 16 bits (8 · 2 · 15 · 127 < 2¹⁵),
/// then one `madd` with the rows' scales (one per lane) widens them. The mins term
/// `Σ min_j · Σ x` comes from the activations' group sums.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn rows_q4k_x8(w: &[BlockQ4Kx8], x: &[&[ActQ8K]], out: &mut [[f32; 8]]) {
    assert!(x.len() <= TILE_ROWS, "{} activation rows in one tile", x.len());
    check_rows(x, w.len());
    let low4 = _mm256_set1_epi8(0x0F);
    let spread = pair_spreaders();
    out.fill([0.0; 8]);
    let mut isum = [_mm256_setzero_si256(); TILE_ROWS];
    let mut min_sum = [_mm256_setzero_si256(); TILE_ROWS];
    for (b, wb) in w.iter().enumerate() {
        prefetch_ahead(wb);
        let registers = wb.qs.as_chunks::<32>().0;
        let (all_scales, all_mins) = (wb.scales.as_chunks::<16>().0, wb.mins.as_chunks::<16>().0);
        isum[..x.len()].fill(_mm256_setzero_si256());
        min_sum[..x.len()].fill(_mm256_setzero_si256());
        for c in 0..4 {
            let scales = _mm256_cvtepu8_epi16(load128(&all_scales[c]));
            let mins = _mm256_cvtepu8_epi16(load128(&all_mins[c]));
            for (e, &spread_e) in spread.iter().enumerate() {
                let j = 2 * c + e;
                let values: [__m256i; 8] = std::array::from_fn(|i| {
                    let q = load256(&registers[8 * c + i]);
                    _mm256_and_si256(if e == 0 { q } else { _mm256_srli_epi16(q, 4) }, low4)
                });
                let scale = _mm256_shuffle_epi8(scales, spread_e);
                let min = _mm256_shuffle_epi8(mins, spread_e);
                for ((xm, sum), msum) in x.iter().zip(isum.iter_mut()).zip(min_sum.iter_mut()) {
                    // SAFETY: `b < w.len()`, and every row of `x` has at least `w.len()` blocks
                    // (`check_rows` above).
                    let xb = unsafe { xm.get_unchecked(b) };
                    let words = xb.qs.as_chunks::<4>().0;
                    let mut pairs = _mm256_setzero_si256();
                    for (i, v) in values.iter().enumerate() {
                        pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(*v, broadcast4(&words[8 * j + i])));
                    }
                    *sum = _mm256_add_epi32(*sum, _mm256_madd_epi16(pairs, scale));
                    let group_sums = broadcast4(&xb.bsums.as_chunks::<2>().0[j]);
                    *msum = _mm256_add_epi32(*msum, _mm256_madd_epi16(min, group_sums));
                }
            }
        }
        let d = load_f16x8(&wb.d);
        let dmin = load_f16x8(&wb.dmin);
        for (((xm, sum), msum), acc) in x.iter().zip(&isum).zip(&min_sum).zip(out.iter_mut()) {
            let xd = _mm256_set1_ps(xm[b].d);
            let total = _mm256_fmadd_ps(_mm256_cvtepi32_ps(*sum), _mm256_mul_ps(d, xd), load_ps(acc));
            let total = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(*msum), _mm256_mul_ps(dmin, xd), total);
            store_ps(acc, total);
        }
    }
}

/// Eight floats of `v` from `i` on, as a register.
///
/// # Safety
/// `i + 8 <= v.len()`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_at(v: &[f32], i: usize) -> __m256 {
    debug_assert!(i + 8 <= v.len());
    // SAFETY: the eight floats from `i` lie inside `v` (the caller's contract); the unaligned
    // load needs no alignment.
    unsafe { _mm256_loadu_ps(v.as_ptr().add(i)) }
}

/// Dot product of two f32 slices, 8 lanes at a time. Panics if their lengths differ.
///
/// (Raw loads rather than `as_chunks` and zipped iterators: for attention's 64- and
/// 128-float heads those cost about a tenth more instructions.)
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot product of slices of different lengths");
    let n = a.len();
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: `i + 16 <= n`, the length of both slices.
        let (a0, b0, a1, b1) = unsafe { (load_at(a, i), load_at(b, i), load_at(a, i + 8), load_at(b, i + 8)) };
        acc0 = _mm256_fmadd_ps(a0, b0, acc0);
        acc1 = _mm256_fmadd_ps(a1, b1, acc1);
        i += 16;
    }
    if i + 8 <= n {
        // SAFETY: `i + 8 <= n`, the length of both slices.
        let (a0, b0) = unsafe { (load_at(a, i), load_at(b, i)) };
        acc0 = _mm256_fmadd_ps(a0, b0, acc0);
        i += 8;
    }
    let mut sum = hsum(_mm256_add_ps(acc0, acc1));
    for (x, y) in a[i..].iter().zip(&b[i..]) {
        sum += x * y;
    }
    sum
}

/// `out += w * v`, 8 lanes at a time. Panics if the lengths differ.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn axpy(w: f32, v: &[f32], out: &mut [f32]) {
    assert_eq!(v.len(), out.len(), "axpy of slices of different lengths");
    let n = out.len();
    let wv = _mm256_set1_ps(w);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 <= n`, the length of both slices; `out` is borrowed exclusively, so
        // the store writes memory nothing else reads; unaligned access needs no alignment.
        unsafe {
            let sum = _mm256_fmadd_ps(wv, load_at(v, i), load_at(out, i));
            _mm256_storeu_ps(out.as_mut_ptr().add(i), sum);
        }
        i += 8;
    }
    for (o, &x) in out[i..].iter_mut().zip(&v[i..]) {
        *o += w * x;
    }
}

/// The range [`exp_ps`] clamps its argument to.
pub(crate) const EXP_MIN: f32 = -87.3;
pub(crate) const EXP_MAX: f32 = 88.3;
/// `ln 2` in two parts, the first exact in few bits, for the range reduction.
pub(crate) const LN2_HIGH: f32 = 0.693_359_4;
pub(crate) const LN2_LOW: f32 = -2.121_944_4e-4;
/// Cephes' polynomial for `(e^r - 1 - r) / r²`, highest power first (Horner's order).
pub(crate) const EXP_POLY: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5];

/// `e^x` lane by lane, within 2 ulp of `f32::exp` for `x` in [-87.3, 88.3] (clamped outside:
/// tiny results flush towards zero, huge ones stay finite).
///
/// The usual range reduction `x = n · ln 2 + r` (`|r| ≤ ln 2 / 2`, `ln 2` in two parts),
/// Cephes' degree-6 polynomial for `e^r`, and `2^n` built in the exponent bits.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn exp_ps(x: __m256) -> __m256 {
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_MIN)), _mm256_set1_ps(EXP_MAX));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HIGH), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LOW), r);
    let mut p = _mm256_set1_ps(EXP_POLY[0]);
    for c in EXP_POLY[1..].iter().copied() {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let e_r = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0));
    let two_n = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)));
    _mm256_mul_ps(e_r, _mm256_castsi256_ps(two_n))
}

/// The least power of two [`exp2_ps`] gives: its argument is clamped at this, so `-∞` (a
/// masked score) gives `2⁻¹²⁶`, which the callers then overwrite with zero.
pub(crate) const EXP2_MIN: f32 = -126.0;
/// `1.5 · 2²³ + 127`: added to an `x` in `[-126, 0]`, the sum rounds `x` to the nearest whole
/// number `n` (the sum's unit in the last place is 1) and its low bits hold `n + 127`, the
/// biased exponent of `2ⁿ`; subtracting it back gives `n` exactly.
pub(crate) const EXP2_ROUND: f32 = 12_583_039.0;
/// A degree-6 polynomial for `2^r`, `r` in `[-½, ½]`, highest power first (Horner's order):
/// relative error 1.9e-9 before rounding, under 1 ulp evaluated in f32 (fitted for this
/// crate, minimax in the relative error; the linear term came out as `ln 2` rounded to f32,
/// and the constant term is exactly 1 so `2⁰ = 1`).
pub(crate) const EXP2_POLY: [f32; 7] =
    [1.534_576_6e-4, 1.339_993_2e-3, 9.618_489e-3, 5.550_328_6e-2, 0.240_226_46, std::f32::consts::LN_2, 1.0];

/// `2^x` lane by lane for `x ≤ 0` (attention's scores less their row's maximum, in base-2
/// units), within 1 ulp of `f32::exp2` for `x` in `[-126, 0]`, clamped below at
/// [`EXP2_MIN`]; a positive `x` gives a wrong value (never undefined behaviour). Cheaper
/// than [`exp_ps`] (twelve operations against seventeen): no `ln 2` range reduction, and
/// the rounding done by adding [`EXP2_ROUND`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn exp2_ps(x: __m256) -> __m256 {
    let x = _mm256_max_ps(x, _mm256_set1_ps(EXP2_MIN));
    let biased = _mm256_add_ps(x, _mm256_set1_ps(EXP2_ROUND));
    let r = _mm256_sub_ps(x, _mm256_sub_ps(biased, _mm256_set1_ps(EXP2_ROUND)));
    let mut p = _mm256_set1_ps(EXP2_POLY[0]);
    for c in EXP2_POLY[1..].iter().copied() {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let two_n = _mm256_slli_epi32::<23>(_mm256_castps_si256(biased));
    _mm256_mul_ps(p, _mm256_castsi256_ps(two_n))
}

/// `gate[i] = silu(gate[i]) · up[i]` (`silu(g) = g / (1 + e^-g)`), 8 lanes at a time; a
/// ragged end goes through the same lanes zero-padded, so every element's result is the
/// same wherever it lies. Panics if the lengths differ.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len(), "silu_mul of slices of different lengths");
    let one = _mm256_set1_ps(1.0);
    let silu_mul8 = |g: __m256, u: __m256| {
        let e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), g));
        _mm256_div_ps(_mm256_mul_ps(g, u), _mm256_add_ps(one, e))
    };
    let (gates, g_tail) = gate.as_chunks_mut::<8>();
    let (ups, u_tail) = up.as_chunks::<8>();
    for (g, u) in gates.iter_mut().zip(ups) {
        let out = silu_mul8(load_ps(g), load_ps(u));
        store_ps(g, out);
    }
    if !g_tail.is_empty() {
        let (mut g8, mut u8) = ([0.0f32; 8], [0.0f32; 8]);
        g8[..g_tail.len()].copy_from_slice(g_tail);
        u8[..u_tail.len()].copy_from_slice(u_tail);
        let out = silu_mul8(load_ps(&g8), load_ps(&u8));
        store_ps(&mut g8, out);
        g_tail.copy_from_slice(&g8[..g_tail.len()]);
    }
}

/// `x ← softmax(x)` with [`exp_ps`]; a ragged end goes through lanes padded with the
/// maximum, and only its real lanes count in the sum.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let max8 = _mm256_set1_ps(max);
    let mut sums = _mm256_setzero_ps();
    let (chunks, tail) = x.as_chunks_mut::<8>();
    for chunk in chunks.iter_mut() {
        let e = exp_ps(_mm256_sub_ps(load_ps(chunk), max8));
        store_ps(chunk, e);
        sums = _mm256_add_ps(sums, e);
    }
    let mut total = hsum(sums);
    if !tail.is_empty() {
        let mut padded = [max; 8];
        padded[..tail.len()].copy_from_slice(tail);
        let e = exp_ps(_mm256_sub_ps(load_ps(&padded), max8));
        store_ps(&mut padded, e);
        tail.copy_from_slice(&padded[..tail.len()]);
        total += tail.iter().sum::<f32>();
    }
    let inv = 1.0 / total;
    let inv8 = _mm256_set1_ps(inv);
    for chunk in chunks.iter_mut() {
        let scaled = _mm256_mul_ps(load_ps(chunk), inv8);
        store_ps(chunk, scaled);
    }
    for v in tail.iter_mut() {
        *v *= inv;
    }
}
