//! The two inner products of tiled attention, on one query tile and one key block.
//!
//! Both keep every output element's sum a fused multiply-add chain in a fixed order (over
//! the head dimension for a score, over the keys for a value sum), whatever the number of
//! rows computed together: a row's results are the same in any tile (batch invariance).
//! Lanes that do not fill a register go through `f32::mul_add`, the same fused operation.

use std::arch::x86_64::*;

use half::f16;

use super::{load_f16x8, load_ps, store_ps};
use crate::attention::{KEY_SPAN, Q8_GROUP};

/// `src` as `f32`s into `dst`, eight at a time through F16C. Panics unless the lengths are
/// equal.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub fn widen_f16(src: &[f16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "widen_f16: lengths differ");
    let (src8, src_tail) = src.as_chunks::<8>();
    let (dst8, dst_tail) = dst.as_chunks_mut::<8>();
    for (s, d) in src8.iter().zip(dst8) {
        store_ps(d, load_f16x8(s));
    }
    for (s, d) in src_tail.iter().zip(dst_tail) {
        *d = s.to_f32();
    }
}

/// `src`'s rows of `width` as `f32`s into rows of `dst` that start `stride` apart (a block's
/// transposed keys into a span's), [`widen_f16`] on each: one call for a block, not one a
/// row, which cost more than the row's conversion. Panics if `dst` is short.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn widen_f16_rows(src: &[f16], width: usize, dst: &mut [f32], stride: usize) {
    if width == 16 {
        // The usual block: each row two registers, without the general loop's setup (which
        // took more instructions than the conversions).
        for (r, row) in src.as_chunks::<16>().0.iter().enumerate() {
            let out: &mut [f32; 16] = (&mut dst[r * stride..r * stride + 16]).try_into().expect("16 floats");
            let (row, out) = (row.as_chunks::<8>().0, out.as_chunks_mut::<8>().0);
            store_ps(&mut out[0], load_f16x8(&row[0]));
            store_ps(&mut out[1], load_f16x8(&row[1]));
        }
        return;
    }
    for (r, row) in src.chunks_exact(width).enumerate() {
        widen_f16(row, &mut dst[r * stride..r * stride + width]);
    }
}

/// Eight 8-bit integers as floats (exact).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_i8x8(v: &[i8; 8]) -> __m256 {
    let bytes = i64::from_le_bytes(v.map(|x| x as u8));
    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_set_epi64x(0, bytes)))
}

/// An 8-bit cache block's keys as `f32`s: `src`'s rows of `width` (a dimension's keys of the
/// block's tokens) into rows of `dst` that start `stride` apart, element `t` of row `d`
/// times `scales[d / Q8_GROUP × width + t]` (its token's scale for the dimension's group),
/// one rounding each as [`crate::attention::KvViewQ8`]'s scalar widening: eight at a time, a
/// row's last few one by one. Panics if `dst` or `scales` is short.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn widen_q8_rows(src: &[i8], scales: &[f16], width: usize, dst: &mut [f32], stride: usize) {
    if width == 16 {
        // The usual block, as in `widen_f16_rows`: each row two registers.
        let scale_rows = scales.as_chunks::<16>().0;
        for (d, row) in src.as_chunks::<16>().0.iter().enumerate() {
            let scale_row = scale_rows[d / Q8_GROUP].as_chunks::<8>().0;
            let out: &mut [f32; 16] = (&mut dst[d * stride..d * stride + 16]).try_into().expect("16 floats");
            let (row, out) = (row.as_chunks::<8>().0, out.as_chunks_mut::<8>().0);
            store_ps(&mut out[0], _mm256_mul_ps(load_i8x8(&row[0]), load_f16x8(&scale_row[0])));
            store_ps(&mut out[1], _mm256_mul_ps(load_i8x8(&row[1]), load_f16x8(&scale_row[1])));
        }
        return;
    }
    for (d, row) in src.chunks_exact(width).enumerate() {
        let scale_row = &scales[d / Q8_GROUP * width..(d / Q8_GROUP + 1) * width];
        let out = &mut dst[d * stride..d * stride + width];
        let ((q8, q_tail), (scales8, scales_tail)) = (row.as_chunks::<8>(), scale_row.as_chunks::<8>());
        let (out8, out_tail) = out.as_chunks_mut::<8>();
        for ((q, scales), out) in q8.iter().zip(scales8).zip(out8) {
            store_ps(out, _mm256_mul_ps(load_i8x8(q), load_f16x8(scales)));
        }
        for ((&q, scale), out) in q_tail.iter().zip(scales_tail).zip(out_tail) {
            *out = f32::from(q) * scale.to_f32();
        }
    }
}

/// An 8-bit cache block's values as `f32`s: each run of [`Q8_GROUP`] elements of `src`
/// times its scale (`scales[i]` for run `i`), into `dst`, one rounding each. Panics unless
/// `dst` is as long as `src` and `scales` has a scale a run.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn widen_q8_groups(src: &[i8], scales: &[f16], dst: &mut [f32]) {
    assert_eq!(dst.len(), src.len(), "widen_q8_groups: lengths differ");
    let (runs, outs) = (src.as_chunks::<Q8_GROUP>().0, dst.as_chunks_mut::<Q8_GROUP>().0);
    for ((run, &scale), out) in runs.iter().zip(&scales[..runs.len()]).zip(outs) {
        let scale = _mm256_set1_ps(scale.to_f32());
        for (q, out) in run.as_chunks::<8>().0.iter().zip(out.as_chunks_mut::<8>().0) {
            store_ps(out, _mm256_mul_ps(load_i8x8(q), scale));
        }
    }
}

/// The first 8 elements of `v`. Panics if there are fewer.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load8(v: &[f32]) -> __m256 {
    load_ps(v[..8].try_into().expect("8 floats"))
}

/// Rows of queries whose scores are computed together (6 rows × 2 registers of keys, plus
/// the two key registers and a broadcast, fit the 16 registers).
const SCORE_ROWS: usize = 6;

/// AVX2 version of [`crate::attention::scalar_scores`]: `scores[r][j] = Σ_d q[r][d] · keys[d][j]`
/// for every row `r` of `q` (`rows × head_dim`) and key `j` of the block (`keys` is
/// `head_dim × block`, the block's keys transposed). Panics if a slice is shorter than that.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn tile_scores(q: &[f32], head_dim: usize, keys: &[f32], block: usize, scores: &mut [f32]) {
    let rows = q.len() / head_dim;
    assert!(keys.len() >= head_dim * block && scores.len() >= rows * block, "tile_scores: short slices");
    score_columns(q, head_dim, block / 16, |column| span_rows(keys, block, 16 * column), block, scores);
    score_tail(q, head_dim, keys, block, block / 16 * 16, scores);
}

/// The scores of every row of `q` (`rows × head_dim`) against `columns` runs of 16 keys,
/// run `c`'s keys being `keys_of(c)` (a dimension's 16 as two registers, dimension after
/// dimension), into columns `16 × c ..` of rows of `scores` that start `stride` apart: six
/// rows together, the rest one at a time.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn score_columns<I: Iterator<Item = [__m256; 2]>>(
    q: &[f32],
    head_dim: usize,
    columns: usize,
    keys_of: impl Fn(usize) -> I,
    stride: usize,
    scores: &mut [f32],
) {
    let rows = q.len() / head_dim;
    let mut r = 0;
    while r < rows {
        let take = SCORE_ROWS.min(rows - r);
        let q_rows = &q[r * head_dim..(r + take) * head_dim];
        let out = &mut scores[r * stride..(r + take) * stride];
        match head_dim {
            64 => score_group::<64, I>(q_rows, take, columns, &keys_of, stride, out),
            128 => score_group::<128, I>(q_rows, take, columns, &keys_of, stride, out),
            _ => score_rows_of(|i, d| q_rows[i * head_dim + d], take, head_dim, columns, &keys_of, stride, out),
        }
        r += take;
    }
}

/// [`score_rows_of`] for queries of a common width `D` (64 and 128 dimensions a head): the
/// rows read as fixed-size arrays, so the inner loop's reads of them need no bounds checks,
/// which otherwise took slots of the ports the multiply-adds run on.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn score_group<const D: usize, I: Iterator<Item = [__m256; 2]>>(
    q_rows: &[f32],
    take: usize,
    columns: usize,
    keys_of: &impl Fn(usize) -> I,
    stride: usize,
    out: &mut [f32],
) {
    let rows = &q_rows.as_chunks::<D>().0[..take];
    // `d` is below `D` already; `% D` (a no-op) lets the compiler see it.
    score_rows_of(|i, d| rows[i][d % D], take, D, columns, keys_of, stride, out);
}

/// The scores of `take` rows (row `i`'s dimension `d` being `query(i, d)`) against every
/// run of 16 keys, six rows together or one at a time.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn score_rows_of<I: Iterator<Item = [__m256; 2]>>(
    query: impl Fn(usize, usize) -> f32,
    take: usize,
    head_dim: usize,
    columns: usize,
    keys_of: &impl Fn(usize) -> I,
    stride: usize,
    out: &mut [f32],
) {
    let query = &query;
    for column in 0..columns {
        let j = 16 * column;
        match take {
            SCORE_ROWS => score_rows::<SCORE_ROWS, 2>(query, head_dim, keys_of(column), stride, j, out),
            _ => {
                for (i, out_row) in out.chunks_exact_mut(stride).take(take).enumerate() {
                    score_rows::<1, 2>(move |_, d| query(i, d), head_dim, keys_of(column), stride, j, out_row);
                }
            }
        }
    }
}

/// The scores of every row of `q_rows` against the fewer than 16 keys from column `j` to the
/// block's end: eight lanes if there are eight, then one at a time (`f32::mul_add`, the same
/// chain). The AVX-512 kernel ends its rows here too.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn score_tail(q_rows: &[f32], head_dim: usize, keys: &[f32], block: usize, mut j: usize, out: &mut [f32]) {
    let take = q_rows.len() / head_dim;
    if j + 8 <= block {
        for (row, out_row) in q_rows.chunks_exact(head_dim).zip(out.chunks_exact_mut(block)) {
            score_rows::<1, 1>(|_, d| row[d], head_dim, span_rows(keys, block, j), block, j, out_row);
        }
        j += 8;
    }
    for col in j..block {
        for i in 0..take {
            let row = &q_rows[i * head_dim..(i + 1) * head_dim];
            out[i * block + col] = (0..head_dim).fold(0.0, |acc, d| row[d].mul_add(keys[d * block + col], acc));
        }
    }
}

/// Rows of `width` floats of a widened span, each row's `8 × N` floats from `from` as `N`
/// registers: the keys (`head_dim × span`, a dimension's keys from column `j`) as
/// [`score_rows`] reads them, and the values (`span × head_dim`, a token's dimensions from
/// `d`) as [`accumulate_rows`] does.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn span_rows<const N: usize>(span: &[f32], width: usize, from: usize) -> impl Iterator<Item = [__m256; N]> + '_ {
    span.chunks_exact(width).map(move |row| {
        let row = &row[from..from + 8 * N];
        std::array::from_fn(|i| load8(&row[8 * i..]))
    })
}

/// Scores of `R` rows (row `r`'s dimension `d` being `query(r, d)`) against `8 × C` keys
/// (`keys`: their dimensions in order), written from column `j` of rows `block` apart.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn score_rows<const R: usize, const C: usize>(
    query: impl Fn(usize, usize) -> f32,
    head_dim: usize,
    keys: impl Iterator<Item = [__m256; C]>,
    block: usize,
    j: usize,
    out: &mut [f32],
) {
    assert!(out.len() >= (R - 1) * block + j + 8 * C);
    let mut acc = [[_mm256_setzero_ps(); C]; R];
    for (d, k) in (0..head_dim).zip(keys) {
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let qv = _mm256_set1_ps(query(r, d));
            for c in 0..C {
                acc_r[c] = _mm256_fmadd_ps(qv, k[c], acc_r[c]);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (c, &a) in acc_r.iter().enumerate() {
            let at = r * block + j + 8 * c;
            store_ps((&mut out[at..at + 8]).try_into().expect("8 floats"), a);
        }
    }
}

/// AVX2 version of [`crate::attention::scalar_accumulate`]: `out[r][..] += Σ_{j < keys} p[r][j] ·
/// values[j][..]` for every row `r` of `out` (`rows × head_dim`), `p` being `rows × block`
/// weights and `values` the block's `block × head_dim` values. Panics if a slice is short.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn tile_accumulate(p: &[f32], block: usize, keys: usize, values: &[f32], head_dim: usize, out: &mut [f32]) {
    let rows = out.len() / head_dim;
    assert!(
        keys <= block && p.len() >= rows * block && values.len() >= keys * head_dim,
        "tile_accumulate: short slices"
    );
    let mut r = 0;
    while r < rows {
        // Four rows at a time over 16 dimensions, then pairs over 32, then one over 64: each
        // as many sums as the registers hold.
        let take = match rows - r {
            1 => 1,
            2 | 3 => 2,
            _ => 4,
        };
        let out_rows = &mut out[r * head_dim..(r + take) * head_dim];
        let p_rows = &p[r * block..(r + take) * block];
        let d = match take {
            4 => accumulate_group::<4, 2>(p_rows, block, keys, values, head_dim, out_rows),
            2 => accumulate_group::<2, 4>(p_rows, block, keys, values, head_dim, out_rows),
            _ => accumulate_group::<1, 8>(p_rows, block, keys, values, head_dim, out_rows),
        };
        accumulate_tail(p_rows, block, keys, values, head_dim, d, out_rows);
        r += take;
    }
}

/// The value sums of `R` rows (`p`: their `R × block` weights; `out`: their `R × head_dim`
/// sums) over the first whole `8 × L` dimensions; returns where they end.
///
/// A span of [`KEY_SPAN`] keys (every span but a lone block wider than that) reads its
/// weights as rows of that fixed width: with `keys` at most the width, the inner loop's
/// reads need no bounds checks, which otherwise took slots of the ports the multiply-adds
/// run on.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn accumulate_group<const R: usize, const L: usize>(
    p: &[f32],
    block: usize,
    keys: usize,
    values: &[f32],
    head_dim: usize,
    out: &mut [f32],
) -> usize {
    let mut d = 0;
    if block == KEY_SPAN {
        assert!(keys <= KEY_SPAN);
        let rows: &[[f32; KEY_SPAN]; R] = p.as_chunks::<KEY_SPAN>().0[..R].try_into().expect("R rows");
        while d + 8 * L <= head_dim {
            accumulate_rows::<R, L>(|r, j| rows[r][j], keys, span_rows(values, head_dim, d), head_dim, d, out);
            d += 8 * L;
        }
    } else {
        let rows: [&[f32]; R] = std::array::from_fn(|r| &p[r * block..r * block + keys]);
        while d + 8 * L <= head_dim {
            accumulate_rows::<R, L>(|r, j| rows[r][j], keys, span_rows(values, head_dim, d), head_dim, d, out);
            d += 8 * L;
        }
    }
    d
}

/// The value sums of every row of `out` over the dimensions from `d` on: 8 at a time, then
/// one at a time (`f32::mul_add`, the same chain).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn accumulate_tail(p: &[f32], block: usize, keys: usize, values: &[f32], head_dim: usize, d: usize, out: &mut [f32]) {
    let mut d = d;
    while d + 8 <= head_dim {
        for (i, out_row) in out.chunks_exact_mut(head_dim).enumerate() {
            let row = &p[i * block..i * block + keys];
            accumulate_rows::<1, 1>(|_, j| row[j], keys, span_rows(values, head_dim, d), head_dim, d, out_row);
        }
        d += 8;
    }
    for dim in d..head_dim {
        for (i, out_row) in out.chunks_exact_mut(head_dim).enumerate() {
            let sum = &mut out_row[dim];
            *sum = (0..keys).fold(*sum, |acc, j| p[i * block + j].mul_add(values[j * head_dim + dim], acc));
        }
    }
}

/// Value sums of `R` rows over the `8 × L` dimensions from `d`, row `r`'s weight of key `j`
/// being `weight(r, j)`, over the first `keys` of `values` (each key's values over those
/// dimensions, in order).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn accumulate_rows<const R: usize, const L: usize>(
    weight: impl Fn(usize, usize) -> f32,
    keys: usize,
    values: impl Iterator<Item = [__m256; L]>,
    head_dim: usize,
    d: usize,
    out: &mut [f32],
) {
    assert!(out.len() >= (R - 1) * head_dim + d + 8 * L);
    let mut acc: [[__m256; L]; R] = std::array::from_fn(|r| {
        std::array::from_fn(|l| {
            let at = r * head_dim + d + 8 * l;
            load_ps(out[at..at + 8].try_into().expect("8 floats"))
        })
    });
    for (j, v) in (0..keys).zip(values) {
        let w: [__m256; R] = std::array::from_fn(|r| _mm256_set1_ps(weight(r, j)));
        for l in 0..L {
            for r in 0..R {
                acc[r][l] = _mm256_fmadd_ps(w[r], v[l], acc[r][l]);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (l, &a) in acc_r.iter().enumerate() {
            let at = r * head_dim + d + 8 * l;
            store_ps((&mut out[at..at + 8]).try_into().expect("8 floats"), a);
        }
    }
}

/// AVX2 version of [`crate::attention::scalar_softmax_step`]. Maximum, weights and sum go 8
/// lanes at a time, the ragged end padded (with `-∞` for the maximum, zero for the sum), so
/// each key's lane, and so the order of the sum, depends only on the key's place in the block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn softmax_step(row: &mut [f32], visible: usize, max: &mut f32, sum: &mut f32) -> f32 {
    if visible < row.len() {
        row[visible..].fill(f32::NEG_INFINITY);
    }
    let (chunks, tail) = row.as_chunks_mut::<8>();
    let mut padded = [f32::NEG_INFINITY; 8];
    padded[..tail.len()].copy_from_slice(tail);
    let mut block_max = load_ps(&padded);
    for chunk in chunks.iter() {
        block_max = _mm256_max_ps(block_max, load_ps(chunk));
    }
    let new_max = max.max(super::hmax(block_max));
    let correction = crate::attention::correction(*max, new_max);
    let shift = _mm256_set1_ps(new_max);
    // Chunk `i` is added into running sum `i % 4` (four short chains of additions rather
    // than one long one), and the four are added as `(s0 + s2) + (s1 + s3)`: the order the
    // AVX-512 kernel keeps too.
    let mut sums = [_mm256_setzero_ps(); 4];
    for (i, chunk) in chunks.iter_mut().enumerate() {
        let e = super::exp2_ps(_mm256_sub_ps(load_ps(chunk), shift));
        store_ps(chunk, e);
        sums[i % 4] = _mm256_add_ps(sums[i % 4], e);
    }
    let block_sum = _mm256_add_ps(_mm256_add_ps(sums[0], sums[2]), _mm256_add_ps(sums[1], sums[3]));
    if !tail.is_empty() {
        let e = super::exp2_ps(_mm256_sub_ps(load_ps(&padded), shift));
        store_ps(&mut padded, e);
        tail.copy_from_slice(&padded[..tail.len()]);
    }
    if visible < row.len() {
        row[visible..].fill(0.0);
    }
    let tail_sum: f32 = row[row.len() / 8 * 8..].iter().sum();
    *sum = *sum * correction + (super::hsum(block_sum) + tail_sum);
    *max = new_max;
    correction
}

/// [`softmax_step`] on every row (one call for a span's rows).
#[target_feature(enable = "avx2,fma,f16c")]
pub fn softmax_steps(rows: crate::attention::SoftmaxRows<'_>) {
    for (row, visible, max, sum, correction) in rows.rows() {
        *correction = softmax_step(row, visible, max, sum);
    }
}
