//! AVX-512 versions of attention's two inner products and its online-softmax step: sixteen
//! lanes and 32 registers, so a tile keeps twice the sums in flight of the AVX2 kernels.
//!
//! They give the same bits as the AVX2 kernels: every score and value sum is the same fused
//! multiply-add chain (the lanes are only wider), `2^x` is the same lane-wise sequence of
//! operations, and the softmax's sum adds each 16 lanes' halves into the running sums the
//! AVX2 kernel adds those 8-lane chunks into, combined in its order. So a sequence's results
//! do not depend on which of the two a CPU runs.
//!
//! Safety, as in `avx2`: every function here is a safe function compiled with AVX-512F (and
//! the AVX2 features), touching memory only through references and the fixed-size loads and
//! stores below, so it is sound for every input on a CPU that has the features; calling one
//! from other code is `unsafe`, and sound exactly when an AVX-512 [`crate::Isa`] proves the
//! features (only [`crate::Isa::available`] makes one, after finding them).

mod matmul;

use std::arch::x86_64::*;

pub use matmul::rows_q5_0x8_wide;

use crate::attention::KEY_SPAN;
use crate::avx2::{exp2_ps, hmax, hsum, load_ps, score_tail, store_ps, EXP2_MIN, EXP2_POLY, EXP2_ROUND};

/// Sixteen floats as a register.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn load16(v: &[f32]) -> __m512 {
    let v: &[f32; 16] = v[..16].try_into().expect("16 floats");
    // SAFETY: `v` is a live reference to 16 floats; the unaligned load needs no alignment.
    unsafe { _mm512_loadu_ps(v.as_ptr()) }
}

/// Stores a register into the first sixteen floats of `v`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
pub(crate) fn store16(v: &mut [f32], x: __m512) {
    let v: &mut [f32; 16] = (&mut v[..16]).try_into().expect("16 floats");
    // SAFETY: `v` is an exclusive reference to 16 floats; the unaligned store needs no alignment.
    unsafe { _mm512_storeu_ps(v.as_mut_ptr(), x) }
}

/// The low and the high eight lanes.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn halves(x: __m512) -> (__m256, __m256) {
    (_mm512_castps512_ps256(x), _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(x))))
}

/// `2^x` lane by lane for `x ≤ 0`: `avx2::exp2_ps`'s operations and constants, sixteen lanes
/// at a time (the same bits; the power of two applied by `scalef` rather than built in the
/// exponent bits, both exact: the result is never subnormal, as `n = -126` means `r ≥ 0`).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn exp2_16(x: __m512) -> __m512 {
    let x = _mm512_max_ps(x, _mm512_set1_ps(EXP2_MIN));
    let n = _mm512_sub_ps(_mm512_add_ps(x, _mm512_set1_ps(EXP2_ROUND)), _mm512_set1_ps(EXP2_ROUND));
    let r = _mm512_sub_ps(x, n);
    let mut p = _mm512_set1_ps(EXP2_POLY[0]);
    for c in EXP2_POLY[1..].iter().copied() {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    _mm512_scalef_ps(p, n)
}

/// Rows of queries whose scores are computed together: 6 rows × 4 registers of keys, plus
/// the four key registers and a broadcast, fit the 32 registers.
const SCORE_ROWS: usize = 6;

/// AVX-512 version of [`crate::attention::scalar_scores`] (the same bits as the AVX2 one):
/// `scores[r][j] = Σ_d q[r][d] · keys[d][j]` for every row `r` of `q` (`rows × head_dim`) and
/// key `j` of the block (`keys`: `head_dim × block`). Panics if a slice is shorter than that.
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
pub fn tile_scores(q: &[f32], head_dim: usize, keys: &[f32], block: usize, scores: &mut [f32]) {
    let rows = q.len() / head_dim;
    assert!(keys.len() >= head_dim * block && scores.len() >= rows * block, "tile_scores: short slices");
    let mut r = 0;
    while r < rows {
        let take = SCORE_ROWS.min(rows - r);
        let q_rows = &q[r * head_dim..(r + take) * head_dim];
        let out = &mut scores[r * block..(r + take) * block];
        match head_dim {
            64 => score_group::<64>(q_rows, take, keys, block, out),
            128 => score_group::<128>(q_rows, take, keys, block, out),
            _ => score_columns(|i, d| q_rows[i * head_dim + d], take, head_dim, keys, block, out),
        }
        // Past the whole 16 keys, fewer than 16 left: the AVX2 kernel's 8-wide and single-lane ends.
        score_tail(q_rows, head_dim, keys, block, block / 16 * 16, out);
        r += take;
    }
}

/// [`score_columns`] for queries of a common width `D` (64 and 128 dimensions a head): the
/// rows read as fixed-size arrays, so the inner loop's reads of them need no bounds checks,
/// which otherwise took slots of the ports the multiply-adds run on.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn score_group<const D: usize>(q_rows: &[f32], take: usize, keys: &[f32], block: usize, out: &mut [f32]) {
    let rows = &q_rows.as_chunks::<D>().0[..take];
    // `d` is below `D` already; `% D` (a no-op) lets the compiler see it.
    score_columns(|i, d| rows[i][d % D], take, D, keys, block, out);
}

/// The scores of `take` rows (row `i`'s dimension `d` being `query(i, d)`) against every
/// whole 16 keys of the block: 64 keys at a time for six rows together, then 32 and 16 for
/// one row at a time.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn score_columns(
    query: impl Fn(usize, usize) -> f32,
    take: usize,
    head_dim: usize,
    keys: &[f32],
    block: usize,
    out: &mut [f32],
) {
    let query = &query;
    let mut j = 0;
    for width in [64, 32, 16] {
        while j + width <= block {
            match (take, width) {
                (6, 64) => score_rows::<6, 4>(query, head_dim, keys, block, j, out),
                (5, 64) => score_rows::<5, 4>(query, head_dim, keys, block, j, out),
                (4, 64) => score_rows::<4, 4>(query, head_dim, keys, block, j, out),
                (3, 64) => score_rows::<3, 4>(query, head_dim, keys, block, j, out),
                (2, 64) => score_rows::<2, 4>(query, head_dim, keys, block, j, out),
                (_, 64) => score_rows::<1, 4>(query, head_dim, keys, block, j, out),
                (_, 32) => score_each_row::<2>(query, take, head_dim, keys, block, j, out),
                _ => score_each_row::<1>(query, take, head_dim, keys, block, j, out),
            }
            j += width;
        }
    }
}

/// [`score_rows`] for one row at a time, `16 × C` keys from column `j`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn score_each_row<const C: usize>(
    query: impl Fn(usize, usize) -> f32 + Copy,
    take: usize,
    head_dim: usize,
    keys: &[f32],
    block: usize,
    j: usize,
    out: &mut [f32],
) {
    for (i, out_row) in out.chunks_exact_mut(block).take(take).enumerate() {
        score_rows::<1, C>(move |_, d| query(i, d), head_dim, keys, block, j, out_row);
    }
}

/// Scores of `R` rows (row `r`'s dimension `d` being `query(r, d)`) against the `16 × C`
/// keys from column `j`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn score_rows<const R: usize, const C: usize>(
    query: impl Fn(usize, usize) -> f32,
    head_dim: usize,
    keys: &[f32],
    block: usize,
    j: usize,
    out: &mut [f32],
) {
    assert!(out.len() >= (R - 1) * block + j + 16 * C);
    let mut acc = [[_mm512_setzero_ps(); C]; R];
    for (d, key_row) in (0..head_dim).zip(keys.chunks_exact(block)) {
        let key_row = &key_row[j..j + 16 * C];
        let k: [__m512; C] = std::array::from_fn(|c| load16(&key_row[16 * c..]));
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let qv = _mm512_set1_ps(query(r, d));
            for (a, &k) in acc_r.iter_mut().zip(&k) {
                *a = _mm512_fmadd_ps(qv, k, *a);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (c, &a) in acc_r.iter().enumerate() {
            store16(&mut out[r * block + j + 16 * c..], a);
        }
    }
}

/// Rows of value sums kept in registers together: 6 rows × 4 registers (64 dimensions).
const ACCUMULATE_ROWS: usize = 6;

/// AVX-512 version of [`crate::attention::scalar_accumulate`] (the same bits as the AVX2
/// one): `out[r][..] += Σ_{j < keys} p[r][j] · values[j][..]` for every row `r` of `out`
/// (`rows × head_dim`), `p` being `rows × block` weights and `values` the block's
/// `block × head_dim` values. Panics if a slice is short.
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
pub fn tile_accumulate(p: &[f32], block: usize, keys: usize, values: &[f32], head_dim: usize, out: &mut [f32]) {
    let rows = out.len() / head_dim;
    assert!(
        keys <= block && p.len() >= rows * block && values.len() >= keys * head_dim,
        "tile_accumulate: short slices"
    );
    if !head_dim.is_multiple_of(16) {
        // The AVX2 kernel's narrower ends.
        return crate::avx2::tile_accumulate(p, block, keys, values, head_dim, out);
    }
    let mut r = 0;
    while r < rows {
        let take = ACCUMULATE_ROWS.min(rows - r);
        let out_rows = &mut out[r * head_dim..(r + take) * head_dim];
        let p_rows = &p[r * block..(r + take) * block];
        match take {
            6 => accumulate_group::<6>(p_rows, block, keys, values, head_dim, out_rows),
            5 => accumulate_group::<5>(p_rows, block, keys, values, head_dim, out_rows),
            4 => accumulate_group::<4>(p_rows, block, keys, values, head_dim, out_rows),
            3 => accumulate_group::<3>(p_rows, block, keys, values, head_dim, out_rows),
            2 => accumulate_group::<2>(p_rows, block, keys, values, head_dim, out_rows),
            _ => accumulate_group::<1>(p_rows, block, keys, values, head_dim, out_rows),
        }
        r += take;
    }
}

/// The value sums of `R` rows (`p`: their `R × block` weights; `out`: their `R × head_dim`
/// sums), 64 dimensions at a time, then 16.
///
/// A span of [`KEY_SPAN`] keys (every span but a lone block wider than that) reads its
/// weights as rows of that fixed width: with `keys` at most the width, the inner loop's
/// reads need no bounds checks, which otherwise took about one slot in twelve of the ports
/// the multiply-adds run on (4% of a long prefill's attention).
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn accumulate_group<const R: usize>(
    p: &[f32],
    block: usize,
    keys: usize,
    values: &[f32],
    head_dim: usize,
    out: &mut [f32],
) {
    let mut d = 0;
    if block == KEY_SPAN {
        assert!(keys <= KEY_SPAN);
        let rows: &[[f32; KEY_SPAN]; R] = p.as_chunks::<KEY_SPAN>().0[..R].try_into().expect("R rows");
        while d + 64 <= head_dim {
            accumulate_rows::<R, 4>(|r, j| rows[r][j], keys, values, head_dim, d, out);
            d += 64;
        }
    } else {
        let rows: [&[f32]; R] = std::array::from_fn(|r| &p[r * block..r * block + keys]);
        while d + 64 <= head_dim {
            accumulate_rows::<R, 4>(|r, j| rows[r][j], keys, values, head_dim, d, out);
            d += 64;
        }
    }
    while d < head_dim {
        for (i, out_row) in out.chunks_exact_mut(head_dim).enumerate() {
            let row = &p[i * block..i * block + keys];
            accumulate_rows::<1, 1>(|_, j| row[j], keys, values, head_dim, d, out_row);
        }
        d += 16;
    }
}

/// Value sums of `R` rows over the `16 × L` dimensions from `d`, row `r`'s weight of key `j`
/// being `weight(r, j)`.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn accumulate_rows<const R: usize, const L: usize>(
    weight: impl Fn(usize, usize) -> f32,
    keys: usize,
    values: &[f32],
    head_dim: usize,
    d: usize,
    out: &mut [f32],
) {
    assert!(out.len() >= (R - 1) * head_dim + d + 16 * L);
    let mut acc: [[__m512; L]; R] =
        std::array::from_fn(|r| std::array::from_fn(|l| load16(&out[r * head_dim + d + 16 * l..])));
    for (j, value_row) in (0..keys).zip(values.chunks_exact(head_dim)) {
        let value_row = &value_row[d..d + 16 * L];
        let v: [__m512; L] = std::array::from_fn(|l| load16(&value_row[16 * l..]));
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let w = _mm512_set1_ps(weight(r, j));
            for (a, &v) in acc_r.iter_mut().zip(&v) {
                *a = _mm512_fmadd_ps(w, v, *a);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (l, &a) in acc_r.iter().enumerate() {
            store16(&mut out[r * head_dim + d + 16 * l..], a);
        }
    }
}

/// The first half of an AVX-512 version of [`crate::attention::scalar_softmax_step`] (the
/// same bits as the AVX2 one): sets the scores past `visible` to `-∞` and returns the row's
/// largest score.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn masked_row_max(row: &mut [f32], visible: usize) -> f32 {
    if visible < row.len() {
        row[visible..].fill(f32::NEG_INFINITY);
    }
    let len = row.len();
    let (wide, rest) = row.split_at(len / 16 * 16);
    let (chunks, tail) = rest.as_chunks::<8>();
    // Two running maxima (a maximum does not depend on the order), half the chain; the
    // registers taken in pairs, so that both maxima stay in registers.
    let mut maxima = [_mm512_set1_ps(f32::NEG_INFINITY); 2];
    let mut pairs = wide.chunks_exact(32);
    for x in &mut pairs {
        maxima[0] = _mm512_max_ps(maxima[0], load16(x));
        maxima[1] = _mm512_max_ps(maxima[1], load16(&x[16..]));
    }
    if !pairs.remainder().is_empty() {
        maxima[0] = _mm512_max_ps(maxima[0], load16(pairs.remainder()));
    }
    let (lo, hi) = halves(_mm512_max_ps(maxima[0], maxima[1]));
    let mut block_max = _mm256_max_ps(lo, hi);
    for chunk in chunks.iter() {
        block_max = _mm256_max_ps(block_max, load_ps(chunk));
    }
    if !tail.is_empty() {
        let mut padded = [f32::NEG_INFINITY; 8];
        padded[..tail.len()].copy_from_slice(tail);
        block_max = _mm256_max_ps(block_max, load_ps(&padded));
    }
    hmax(block_max)
}

/// The second half: turns the row's scores into weights `2^(score - max)` (those past
/// `visible` zero) and returns their sum. Sixteen lanes at a time, each register's two halves
/// added into the running sums the AVX2 kernel adds those 8-lane chunks into; the last 8-lane
/// chunk and the ragged end as there.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
fn exp_row(row: &mut [f32], visible: usize, max: f32) -> f32 {
    let len = row.len();
    let (wide, rest) = row.split_at_mut(len / 16 * 16);
    let (chunks, tail) = rest.as_chunks_mut::<8>();
    // The AVX2 kernel adds 8-lane chunk `i` into running sum `i % 4`: here register `k`
    // holds chunks `2k` and `2k + 1`, so the even registers' halves are sums 0 and 1, the
    // odd ones' sums 2 and 3. The registers are taken in pairs, so that both running sums
    // stay in registers.
    let mut even_odd = [_mm512_setzero_ps(); 2];
    let shift16 = _mm512_set1_ps(max);
    let weights16 = |x: &mut [f32]| {
        let e = exp2_16(_mm512_sub_ps(load16(x), shift16));
        store16(x, e);
        e
    };
    let mut pairs = wide.chunks_exact_mut(32);
    for x in &mut pairs {
        let (even, odd) = x.split_at_mut(16);
        even_odd[0] = _mm512_add_ps(even_odd[0], weights16(even));
        even_odd[1] = _mm512_add_ps(even_odd[1], weights16(odd));
    }
    let last = pairs.into_remainder();
    if !last.is_empty() {
        even_odd[0] = _mm512_add_ps(even_odd[0], weights16(last));
    }
    let ((s0, s1), (s2, s3)) = (halves(even_odd[0]), halves(even_odd[1]));
    let shift = _mm256_set1_ps(max);
    let block_sum = if chunks.is_empty() {
        // The usual row (a multiple of 16 long): the four sums stay in registers.
        _mm256_add_ps(_mm256_add_ps(s0, s2), _mm256_add_ps(s1, s3))
    } else {
        let mut sums = [s0, s1, s2, s3];
        for (i, chunk) in chunks.iter_mut().enumerate() {
            let e = exp2_ps(_mm256_sub_ps(load_ps(chunk), shift));
            store_ps(chunk, e);
            let at = (wide.len() / 8 + i) % 4;
            sums[at] = _mm256_add_ps(sums[at], e);
        }
        _mm256_add_ps(_mm256_add_ps(sums[0], sums[2]), _mm256_add_ps(sums[1], sums[3]))
    };
    if !tail.is_empty() {
        let mut padded = [f32::NEG_INFINITY; 8];
        padded[..tail.len()].copy_from_slice(tail);
        let e = exp2_ps(_mm256_sub_ps(load_ps(&padded), shift));
        store_ps(&mut padded, e);
        tail.copy_from_slice(&padded[..tail.len()]);
    }
    if visible < row.len() {
        row[visible..].fill(0.0);
    }
    let tail_sum: f32 = row[len / 8 * 8..].iter().sum();
    hsum(block_sum) + tail_sum
}

/// AVX-512 version of [`crate::attention::scalar_softmax_step`] on every row of a span, the
/// same bits as the AVX2 one. Every row's maximum first, then every row's weights: a row's
/// maximum ends in a chain of dependent steps (a horizontal maximum, then a scalar `2^x` for
/// its correction), and with the rows' chains independent of each other the processor
/// overlaps them, where one row at a time it waited on each.
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
pub fn softmax_steps(rows: crate::attention::SoftmaxRows<'_>) {
    let crate::attention::SoftmaxRows { weights, span, visible, max, sum, corrections } = rows;
    let running = max.iter_mut().zip(corrections.iter_mut());
    for ((row, &visible), (max, correction)) in weights.chunks_exact_mut(span).zip(visible).zip(running) {
        let new_max = max.max(masked_row_max(row, visible));
        *correction = crate::attention::correction(*max, new_max);
        *max = new_max;
    }
    let running = max.iter().zip(sum.iter_mut()).zip(corrections.iter());
    for ((row, &visible), ((&max, sum), &correction)) in weights.chunks_exact_mut(span).zip(visible).zip(running) {
        *sum = *sum * correction + exp_row(row, visible, max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp2_gives_the_bits_of_the_avx2_one() {
        // Whatever `PONDER_KERNELS` says: this compares the two levels themselves.
        if !crate::Isa::available().iter().any(|isa| isa.has_avx512()) {
            return;
        }
        let mut xs: Vec<f32> = (0..=1_280_000).map(|i| -(i as f32) / 10_000.0).collect();
        // Halves (the rounding's ties), the clamp, and what lies past it.
        xs.extend((0..=260).map(|i| -(i as f32) / 2.0));
        xs.extend([f32::NEG_INFINITY, f32::NAN, -1e30, -0.0, -f32::MIN_POSITIVE]);
        xs.resize(xs.len().div_ceil(16) * 16, 0.0);
        for chunk in xs.chunks_exact(16) {
            let (mut wide, mut narrow) = ([0.0f32; 16], [0.0f32; 16]);
            // SAFETY: AVX-512F was detected, and with it (`Isa::available`) AVX2, FMA and F16C.
            unsafe {
                store16(&mut wide, exp2_16(load16(chunk)));
                let (low, high) = narrow.split_at_mut(8);
                store_ps(low.try_into().expect("8"), exp2_ps(load_ps(chunk[..8].try_into().expect("8"))));
                store_ps(high.try_into().expect("8"), exp2_ps(load_ps(chunk[8..].try_into().expect("8"))));
            }
            let bits = |v: &[f32; 16]| v.map(f32::to_bits);
            assert_eq!(bits(&wide), bits(&narrow), "2^x of {chunk:?}");
        }
    }
}
