//! Scores and value sums of a small tile (a decode step's few query rows) read straight
//! from the cache's blocks as they are stored, instead of from a span widened to `f32`
//! first: with few rows to share each widened key and value, the widening's stores and
//! reloads cost more than the products. Every key and value becomes the same `f32` the
//! widening makes (an exact conversion), and every score and value sum is the same chain of
//! multiply-adds, so the results are the same bits as [`super::tile_scores`] and
//! [`super::tile_accumulate`] give. The 8-bit cache is widened whatever the tile: read
//! straight, its conversions (a product each) ran half again the widening's instructions.

use std::arch::x86_64::*;

use super::attention::{accumulate_rows, score_columns};
use super::{load_f16x8, load_ps, prefetch};
use crate::attention::{KvElement, KvView, StoredKv, KEY_SPAN};

/// Tokens a block must hold for these kernels: one run of 16 keys a block.
pub const STORED_BLOCK: usize = 16;

/// The scores of every row of `q` (`rows × head_dim`) against the keys of KV head `kv_head`
/// of `blocks` (at most a span of them), block `i`'s into columns `16 × i ..` of rows of
/// `scores` that start [`KEY_SPAN`] apart. On the way, the keys of `next` (the next span's
/// blocks) are prefetched, a block's with each block's scores, so that the memory works
/// while the products do (asked for all at once ahead of a span, the requests queue up, and
/// the products wait). Panics unless the blocks hold 16 tokens, or if a slice is short.
#[target_feature(enable = "avx2,fma,f16c")]
pub fn stored_scores(
    kv: StoredKv<'_>,
    blocks: &[u32],
    next: &[u32],
    kv_head: usize,
    q: &[f32],
    head_dim: usize,
    scores: &mut [f32],
) {
    assert!(blocks.len() * STORED_BLOCK <= KEY_SPAN, "stored_scores: more than a span");
    let span = [blocks, next];
    match kv {
        StoredKv::F32(view) => scores_from(view, span, kv_head, q, head_dim, scores, |x| load_ps(x)),
        StoredKv::F16(view) => scores_from(view, span, kv_head, q, head_dim, scores, |x| load_f16x8(x)),
    }
}

/// [`stored_scores`] over a cache of `E`, `load` making eight of its elements `f32`s.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scores_from<E: KvElement>(
    view: KvView<'_, E>,
    [blocks, next]: [&[u32]; 2],
    kv_head: usize,
    q: &[f32],
    head_dim: usize,
    scores: &mut [f32],
    load: impl Fn(&[E; 8]) -> __m256,
) {
    let keys_of = |i: usize| {
        prefetch_next(next, i, |block| {
            prefetch(view.head_keys(block, kv_head));
        });
        key_rows(view, blocks[i], kv_head).map(|[low, high]| [load(low), load(high)])
    };
    score_columns(q, head_dim, blocks.len(), keys_of, KEY_SPAN, scores);
}

/// Calls `fetch` on the next span's block `i`, if there is one.
#[inline]
fn prefetch_next(next: &[u32], i: usize, fetch: impl FnOnce(u32)) {
    if let Some(&block) = next.get(i) {
        fetch(block);
    }
}

/// KV head `kv_head`'s keys of `block`, dimension after dimension, each as its two runs of 8.
fn key_rows<E: KvElement>(view: KvView<'_, E>, block: u32, kv_head: usize) -> impl Iterator<Item = [&[E; 8]; 2]> {
    view.head_keys(block, kv_head).as_chunks::<STORED_BLOCK>().0.iter().map(halves)
}

/// A run of 16 as its two runs of 8.
fn halves<T>(row: &[T; 16]) -> [&[T; 8]; 2] {
    let (low, high) = row.split_at(8);
    [low.try_into().expect("8"), high.try_into().expect("8")]
}

/// Rows of the span's weights summed together: with two registers of dimensions a pass, four
/// rows make eight sums, beside the values' two registers and a broadcast.
const VALUE_ROWS: usize = 4;
/// Dimensions a pass of the value sums covers: two registers.
const PASS_DIMS: usize = 16;

/// `out[r][..] += Σ_{j < keys} p[r][j] · value_j[..]` for every row `r` of `out` (`rows ×
/// head_dim`), `p` being the rows' weights (rows [`KEY_SPAN`] apart) and value `j` the
/// `j`-th of KV head `kv_head`'s values of `blocks`, in order; the values of `next` (the next
/// span's blocks) are prefetched a block at a time in the passes over the first dimensions,
/// as [`stored_scores`] does the keys. Panics unless the blocks hold 16 tokens, `head_dim` is
/// a multiple of 16 and `keys` at most a span, or if a slice is short.
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
pub fn stored_accumulate(
    kv: StoredKv<'_>,
    blocks: &[u32],
    next: &[u32],
    kv_head: usize,
    p: &[f32],
    keys: usize,
    head_dim: usize,
    out: &mut [f32],
) {
    assert!(keys <= KEY_SPAN && keys <= blocks.len() * STORED_BLOCK, "stored_accumulate: keys past the blocks");
    assert!(head_dim.is_multiple_of(PASS_DIMS), "stored_accumulate: head of {head_dim}");
    let span = [&blocks[..keys.div_ceil(STORED_BLOCK)], next];
    match kv {
        StoredKv::F32(view) => accumulate_from(view, span, kv_head, p, keys, out, |x| load_ps(x)),
        StoredKv::F16(view) => accumulate_from(view, span, kv_head, p, keys, out, |x| load_f16x8(x)),
    }
}

/// [`stored_accumulate`] over a cache of `E` (`blocks`: those the keys reach), `load` making
/// eight of its elements `f32`s.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn accumulate_from<E: KvElement>(
    view: KvView<'_, E>,
    [blocks, next]: [&[u32]; 2],
    kv_head: usize,
    p: &[f32],
    keys: usize,
    out: &mut [f32],
    load: impl Fn(&[E; 8]) -> __m256,
) {
    let values_of = |i: usize, d: usize| {
        if d == 0 {
            prefetch_next(next, i, |block| prefetch(view.head_values(block, kv_head)));
        }
        value_rows(view, blocks[i], kv_head, d).map(|[low, high]| [load(low), load(high)])
    };
    accumulate_passes(p, keys, values_of, view.layout.head_dim, out);
}

/// KV head `kv_head`'s values of `block`, token after token, each token's 16 dimensions
/// from `d` as two runs of 8.
fn value_rows<E: KvElement>(
    view: KvView<'_, E>,
    block: u32,
    kv_head: usize,
    d: usize,
) -> impl Iterator<Item = [&[E; 8]; 2]> {
    let head_dim = view.layout.head_dim;
    view.head_values(block, kv_head).chunks_exact(head_dim).map(move |row| {
        let run: &[E; PASS_DIMS] = row[d..d + PASS_DIMS].try_into().expect("16 values");
        halves(run)
    })
}

/// [`stored_accumulate`]'s passes: rows four at a time (then the three, two or one left),
/// 16 dimensions a pass, a call a block, the keys' values over those dimensions being
/// `values_of(i, d)` for block `i`. The sums go through `out` between blocks (exactly: the
/// chain of each sum is the same), which costs less than one iterator over all the blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn accumulate_passes<I: Iterator<Item = [__m256; 2]>>(
    p: &[f32],
    keys: usize,
    values_of: impl Fn(usize, usize) -> I,
    head_dim: usize,
    out: &mut [f32],
) {
    let rows = out.len() / head_dim;
    let weights = p.as_chunks::<KEY_SPAN>().0;
    let mut r = 0;
    while r < rows {
        let take = VALUE_ROWS.min(rows - r);
        let out_rows = &mut out[r * head_dim..(r + take) * head_dim];
        for d in (0..head_dim).step_by(PASS_DIMS) {
            for (i, first) in (0..keys).step_by(STORED_BLOCK).enumerate() {
                let block_keys = (keys - first).min(STORED_BLOCK);
                let w = |row: usize| -> &[f32; STORED_BLOCK] {
                    weights[r + row][first..first + STORED_BLOCK].try_into().expect("a block of weights")
                };
                let (values, out_rows) = (values_of(i, d), &mut *out_rows);
                match take {
                    4 => accumulate_block::<4>(std::array::from_fn(w), block_keys, values, head_dim, d, out_rows),
                    3 => accumulate_block::<3>(std::array::from_fn(w), block_keys, values, head_dim, d, out_rows),
                    2 => accumulate_block::<2>(std::array::from_fn(w), block_keys, values, head_dim, d, out_rows),
                    _ => accumulate_block::<1>(std::array::from_fn(w), block_keys, values, head_dim, d, out_rows),
                }
            }
        }
        r += take;
    }
}

/// One block of one pass of [`accumulate_passes`] over `R` rows, `weights` their weights of
/// the block's keys.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn accumulate_block<const R: usize>(
    weights: [&[f32; STORED_BLOCK]; R],
    keys: usize,
    values: impl Iterator<Item = [__m256; 2]>,
    head_dim: usize,
    d: usize,
    out: &mut [f32],
) {
    // `j` is below the block's size already; `% STORED_BLOCK` (a no-op) lets the compiler see it.
    accumulate_rows::<R, 2>(|i, j| weights[i][j % STORED_BLOCK], keys, values, head_dim, d, out);
}
