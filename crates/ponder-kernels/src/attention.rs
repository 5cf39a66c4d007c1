//! Causal attention of a tile of queries over one sequence's keys and values, read from the
//! block-based KV cache, flash-attention style: a span of blocks at a time ([`KEY_SPAN`]
//! keys), widened to f32, with an online softmax, so each block's keys and values are read
//! once for every query of the tile and every query head that shares the KV head. A decode
//! step's tile (a few rows) over an f16 or f32 cache reads the blocks as stored instead
//! ([`StoredKv`]): with so few rows to share a widened span, the widening cost the most.
//!
//! A query's result depends only on its own position and the cache: the spans are runs of
//! the cache's blocks, aligned at absolute positions, visited in order from the first; a
//! span past a query's position is skipped, and in the span that holds it the later keys are
//! left out. Every score and every value sum is the same chain of operations in whatever
//! tile the query sits, so a sequence's attention is bit-for-bit the same alone, batched,
//! or split into chunks.

use half::f16;

use crate::Isa;

mod q8;
pub use q8::{quantize_q8, KvViewQ8, Q8_GROUP};

/// A type the KV cache holds: `f32`, or `f16` (half the bytes; an 11-bit significand).
pub trait KvElement: Copy + Default + Send + Sync + 'static {
    /// The nearest value of this type.
    fn from_f32(x: f32) -> Self;
    /// The value as an `f32` (exact).
    fn to_f32(self) -> f32;
    /// `src` as `f32`s into `dst` (exact). Panics unless the lengths are equal.
    fn widen(isa: Isa, src: &[Self], dst: &mut [f32]);

    /// A cache of this type, as the kernels that read it without widening see it.
    fn stored(view: KvView<'_, Self>) -> StoredKv<'_>;

    /// `src`'s rows of `width` as `f32`s into rows of `dst` that start `stride` apart
    /// (exact). Panics if `dst` is short.
    fn widen_rows(isa: Isa, src: &[Self], width: usize, dst: &mut [f32], stride: usize) {
        widen_row_by_row(isa, src, width, dst, stride);
    }
}

/// [`KvElement::widen_rows`] as one [`KvElement::widen`] a row: the default, and the
/// fallback of a type whose SIMD kernels do a block at once.
fn widen_row_by_row<E: KvElement>(isa: Isa, src: &[E], width: usize, dst: &mut [f32], stride: usize) {
    for (r, row) in src.chunks_exact(width).enumerate() {
        E::widen(isa, row, &mut dst[r * stride..r * stride + width]);
    }
}

impl KvElement for f32 {
    fn from_f32(x: f32) -> Self {
        x
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn widen(_isa: Isa, src: &[Self], dst: &mut [f32]) {
        dst.copy_from_slice(src);
    }
    fn stored(view: KvView<'_, Self>) -> StoredKv<'_> {
        StoredKv::F32(view)
    }
}

impl KvElement for f16 {
    fn from_f32(x: f32) -> Self {
        f16::from_f32(x)
    }
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    fn widen(isa: Isa, src: &[Self], dst: &mut [f32]) {
        assert_eq!(src.len(), dst.len(), "widen: lengths differ");
        #[cfg(target_arch = "x86_64")]
        if isa.has_avx2() {
            // SAFETY: an AVX2 `Isa` is made only by `Isa::available`, after finding AVX2, FMA and
            // F16C, the target features of the `avx2` kernels.
            return unsafe { crate::avx2::widen_f16(src, dst) };
        }
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = x.to_f32();
        }
    }
    fn stored(view: KvView<'_, Self>) -> StoredKv<'_> {
        StoredKv::F16(view)
    }
    fn widen_rows(isa: Isa, src: &[Self], width: usize, dst: &mut [f32], stride: usize) {
        #[cfg(target_arch = "x86_64")]
        if isa.has_avx2() {
            // SAFETY: as in `widen`.
            return unsafe { crate::avx2::widen_f16_rows(src, width, dst, stride) };
        }
        widen_row_by_row(isa, src, width, dst, stride);
    }
}

/// How one layer's cache lays out keys and values: for each block, for each KV head, the
/// block's keys transposed (`head_dim × block_size`: each dimension's values for the block's
/// tokens side by side, as the score product reads them), then the block's values
/// (`block_size × head_dim`, one token after another, as the value sum reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLayout {
    /// KV heads.
    pub kv_heads: usize,
    /// Floats per head.
    pub head_dim: usize,
    /// Tokens per block.
    pub block_size: usize,
}

impl KvLayout {
    /// Floats of keys (or of values) in one block: `kv_heads × head_dim × block_size`.
    pub fn block_floats(&self) -> usize {
        self.kv_heads * self.head_dim * self.block_size
    }

    /// Floats of one KV head's keys (or values) in one block.
    fn head_floats(&self) -> usize {
        self.head_dim * self.block_size
    }

    /// Where KV head `kv_head`'s part of block `block` starts, in the keys or the values.
    fn head_start(&self, block: u32, kv_head: usize) -> usize {
        (block as usize * self.kv_heads + kv_head) * self.head_floats()
    }

    /// Writes one token's keys and values (`kv_heads × head_dim` each), each element through
    /// `convert`, into slot `offset` of block `block`. Panics if the block is outside the
    /// slices.
    #[allow(clippy::too_many_arguments)]
    pub fn store<X: Copy, E>(
        &self,
        keys: &mut [E],
        values: &mut [E],
        block: u32,
        offset: usize,
        k: &[X],
        v: &[X],
        convert: impl Fn(X) -> E,
    ) {
        assert!(offset < self.block_size, "slot {offset} outside a block of {}", self.block_size);
        let (hd, bs) = (self.head_dim, self.block_size);
        for h in 0..self.kv_heads {
            let start = self.head_start(block, h);
            let key_head = &mut keys[start..start + self.head_floats()];
            for (d, &x) in k[h * hd..(h + 1) * hd].iter().enumerate() {
                key_head[d * bs + offset] = convert(x);
            }
            let value = &mut values[start + offset * hd..start + (offset + 1) * hd];
            for (slot, &x) in value.iter_mut().zip(&v[h * hd..(h + 1) * hd]) {
                *slot = convert(x);
            }
        }
    }

    /// Copies the first `len` slots of block `src` into block `dst`, keys and values.
    /// Panics if a block is outside the slices or `len` exceeds the block size.
    pub fn copy_prefix<E: Copy>(&self, keys: &mut [E], values: &mut [E], src: u32, dst: u32, len: usize) {
        assert!(len <= self.block_size, "copy of {len} slots from a block of {}", self.block_size);
        let (hd, bs) = (self.head_dim, self.block_size);
        for h in 0..self.kv_heads {
            let (from, to) = (self.head_start(src, h), self.head_start(dst, h));
            for d in 0..hd {
                keys.copy_within(from + d * bs..from + d * bs + len, to + d * bs);
            }
            values.copy_within(from..from + len * hd, to);
        }
    }
}

/// One layer's KV cache on the host, laid out as [`KvLayout`] says.
#[derive(Debug, Clone, Copy)]
pub struct KvView<'a, E> {
    /// Keys, `blocks × block_floats`.
    pub keys: &'a [E],
    /// Values, `blocks × block_floats`.
    pub values: &'a [E],
    /// Their layout.
    pub layout: KvLayout,
}

/// A layer's KV cache as attention reads it: one KV head of a run of blocks at a time,
/// widened to `f32`.
pub trait KvBlocks: Copy + Send + Sync {
    /// The cache's layout.
    fn layout(&self) -> KvLayout;

    /// KV head `kv_head` of `block`, as `f32`: its keys into the first `block_size` columns of
    /// `keys` (rows `span` apart: a span's `head_dim × span`, transposed), its values into the
    /// first `block_size` rows of `values` (`head_dim` floats a token). The rest is left as it
    /// is. Panics if a buffer is short.
    fn widen(&self, isa: Isa, block: u32, kv_head: usize, span: usize, keys: &mut [f32], values: &mut [f32]);

    /// Asks for KV head `kv_head` of `block` to be brought into the cache, to be widened
    /// next: a decode step at depth reads far more keys and values than the caches hold.
    fn prefetch(&self, isa: Isa, block: u32, kv_head: usize);

    /// The cache as it is stored, for the kernels that read a small tile's keys and values
    /// without widening them; `None` for a cache that is always widened.
    fn stored(&self) -> Option<StoredKv<'_>>;
}

/// A layer's cache as it is stored, for the kernels that read a small tile's keys and
/// values straight from its blocks (a decode step's few rows would spend more on widening a
/// span to `f32` than on their products).
#[derive(Debug, Clone, Copy)]
pub enum StoredKv<'a> {
    /// An `f32` cache.
    F32(KvView<'a, f32>),
    /// An `f16` cache.
    F16(KvView<'a, f16>),
}

impl<'a, E> KvView<'a, E> {
    /// KV head `kv_head`'s keys of `block` (`head_dim × block_size`, transposed). Panics if
    /// the block is outside the cache.
    pub fn head_keys(&self, block: u32, kv_head: usize) -> &'a [E] {
        let head = self.layout.head_start(block, kv_head);
        &self.keys[head..head + self.layout.head_floats()]
    }

    /// KV head `kv_head`'s values of `block` (`block_size × head_dim`, token after token).
    /// Panics if the block is outside the cache.
    pub fn head_values(&self, block: u32, kv_head: usize) -> &'a [E] {
        let head = self.layout.head_start(block, kv_head);
        &self.values[head..head + self.layout.head_floats()]
    }
}

/// Asks for `data` to be brought into the cache (a hint; nothing on the scalar path).
pub fn prefetch<T>(isa: Isa, data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an AVX2 `Isa` is made only by `Isa::available`, after finding AVX2, FMA and F16C,
        // the target features of the `avx2` kernels.
        unsafe { crate::avx2::prefetch(data) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (isa, data);
}

impl<E: KvElement> KvBlocks for KvView<'_, E> {
    fn layout(&self) -> KvLayout {
        self.layout
    }

    fn widen(&self, isa: Isa, block: u32, kv_head: usize, span: usize, keys: &mut [f32], values: &mut [f32]) {
        E::widen_rows(isa, self.head_keys(block, kv_head), self.layout.block_size, keys, span);
        E::widen(isa, self.head_values(block, kv_head), &mut values[..self.layout.head_floats()]);
    }

    fn prefetch(&self, isa: Isa, block: u32, kv_head: usize) {
        prefetch(isa, self.head_keys(block, kv_head));
        prefetch(isa, self.head_values(block, kv_head));
    }

    fn stored(&self) -> Option<StoredKv<'_>> {
        Some(E::stored(*self))
    }
}

/// The queries one call attends: `tokens` consecutive tokens of one sequence, from position
/// `first_position`, and of each the `group` query heads that read KV head `kv_head`.
#[derive(Debug, Clone, Copy)]
pub struct QueryTile<'a> {
    /// The tile's rows of the batch's queries: token `t`'s heads start at `t × stride`.
    pub q: &'a [f32],
    /// Floats from one token's queries to the next.
    pub stride: usize,
    /// Tokens in the tile.
    pub tokens: usize,
    /// Position of the tile's first token in its sequence.
    pub first_position: usize,
    /// The KV head; its query heads are `kv_head × group .. (kv_head + 1) × group`.
    pub kv_head: usize,
    /// Query heads per KV head.
    pub group: usize,
    /// Factor applied to every score (`1 / √head_dim`).
    pub scale: f32,
}

/// Keys per online-softmax step: a span of whole cache blocks (128 keys in 8 blocks of 16),
/// aligned at absolute positions, widened to f32 together. One step costs a maximum, a sum
/// and perhaps a rescale of each row's value sums, so a span of eight blocks pays that an
/// eighth as often as one block; a block wider than this is a span by itself.
pub const KEY_SPAN: usize = 128;

/// Buffers one attention call reuses from the last.
#[derive(Debug, Default)]
pub struct AttentionScratch {
    q: Vec<f32>,
    /// The current span's keys (`head_dim × span`) and values (`span × head_dim`).
    keys: LineAligned,
    values: LineAligned,
    weights: LineAligned,
    max: Vec<f32>,
    sum: Vec<f32>,
    /// Per row of the current span: keys at or before its position, and the factor its
    /// earlier value sum must be multiplied by.
    visible: Vec<usize>,
    corrections: Vec<f32>,
}

/// A reusable buffer of floats whose slice starts at a 64-byte boundary, so that the kernels'
/// 16-float loads of its rows never straddle two cache lines (a split load costs about
/// another load: 8–12% of the inner products' speed).
#[derive(Debug, Default)]
struct LineAligned {
    floats: Vec<f32>,
}

impl LineAligned {
    /// Floats in one 64-byte line.
    const LINE: usize = 16;

    /// `len` floats starting at a line boundary, holding whatever the last use left there.
    fn slice(&mut self, len: usize) -> &mut [f32] {
        self.floats.resize(len + Self::LINE, 0.0);
        // `align_offset` may answer `usize::MAX` ("cannot align"): then unaligned, still correct.
        let start = self.floats.as_ptr().align_offset(64).min(Self::LINE);
        &mut self.floats[start..start + len]
    }
}

/// Attends every query of `tile` over its sequence's positions `0..=` its own, the sequence's
/// blocks being `blocks`, and writes the results into `out`: `tokens × group × head_dim`,
/// token by token, each token's heads in order. Panics if a slice is too short for the
/// tile, or the blocks do not cover the tile's last position.
pub fn attend_tile<K: KvBlocks>(
    isa: Isa,
    tile: QueryTile<'_>,
    kv: K,
    blocks: &[u32],
    scratch: &mut AttentionScratch,
    out: &mut [f32],
) {
    if tile.tokens == 0 {
        return;
    }
    let KvLayout { head_dim, block_size, .. } = kv.layout();
    let per_span = (KEY_SPAN / block_size).max(1);
    let span = per_span * block_size;
    let rows = tile.tokens * tile.group;
    let out = &mut out[..rows * head_dim];
    let s = scratch;
    gather_scaled_queries(tile, head_dim, &mut s.q);
    let (weights, keys, values) =
        (s.weights.slice(rows * span), s.keys.slice(head_dim * span), s.values.slice(span * head_dim));
    s.max.clear();
    s.max.resize(rows, f32::NEG_INFINITY);
    s.sum.clear();
    s.sum.resize(rows, 0.0);
    out.fill(0.0);
    let last_position = tile.first_position + tile.tokens - 1;
    let used = &blocks[..=last_position / block_size];
    let stored = if reads_stored(isa, kv.layout(), rows) { kv.stored() } else { None };
    for (index, span_blocks) in used.chunks(per_span).enumerate() {
        let span_start = index * span;
        let filled = span_blocks.len() * block_size;
        let next = used.chunks(per_span).nth(index + 1).unwrap_or(&[]);
        if stored.is_none() {
            // A block at a time, the next span's block in the same place prefetched with each
            // (the stored kernels prefetch as they go too): all at once, the requests queue up.
            let head_floats = head_dim * block_size;
            for (i, &block) in span_blocks.iter().enumerate() {
                if let Some(&ahead) = next.get(i) {
                    kv.prefetch(isa, ahead, tile.kv_head);
                }
                let (keys, values) = (&mut keys[i * block_size..], &mut values[i * head_floats..]);
                kv.widen(isa, block, tile.kv_head, span, keys, values);
            }
            if filled < span {
                // The sequence's last span: no query sees past `filled`, but every score is computed.
                for row in keys.chunks_exact_mut(span) {
                    row[filled..].fill(0.0);
                }
                values[filled * head_dim..].fill(0.0);
            }
        }
        // Tokens before the span's first key have nothing in it.
        let first_row = span_start.saturating_sub(tile.first_position) * tile.group;
        let weights = &mut weights[first_row * span..];
        let q = &s.q[first_row * head_dim..];
        match stored {
            // The scores of keys past `filled` are left as they were: no query sees them.
            Some(stored) => stored_scores(isa, stored, [span_blocks, next], tile.kv_head, q, head_dim, weights),
            None => scores(isa, q, head_dim, keys, span, weights),
        }
        let rows = weights.len() / span;
        s.visible.clear();
        s.visible.extend((first_row..first_row + rows).map(|row| {
            let position = tile.first_position + row / tile.group;
            (position + 1 - span_start).min(span)
        }));
        s.corrections.resize(rows, 1.0);
        let steps = SoftmaxRows {
            weights,
            span,
            visible: &s.visible,
            max: &mut s.max[first_row..],
            sum: &mut s.sum[first_row..],
            corrections: &mut s.corrections,
        };
        softmax_steps(isa, steps);
        for (row, &correction) in out[first_row * head_dim..].chunks_exact_mut(head_dim).zip(&s.corrections) {
            if correction != 1.0 {
                row.iter_mut().for_each(|x| *x *= correction);
            }
        }
        let widest = s.visible.iter().copied().max().unwrap_or(0);
        let out = &mut out[first_row * head_dim..];
        match stored {
            Some(stored) => {
                stored_accumulate(isa, stored, [span_blocks, next], tile.kv_head, weights, widest, head_dim, out)
            }
            None => accumulate(isa, weights, span, widest, values, head_dim, out),
        }
    }
    for (row, &sum) in out.chunks_exact_mut(head_dim).zip(&s.sum) {
        let inverse = 1.0 / sum;
        for x in row {
            *x *= inverse;
        }
    }
}

/// Query rows a tile may have for its keys and values to be read as stored, not widened to
/// `f32` first: a decode step's (one token's query heads of a KV head). Widening a span costs
/// as much whatever its rows, so it pays only when many rows share it.
const STORED_ROWS: usize = 8;

/// Whether a tile of `rows` reads `layout`'s cache as stored: a small tile, on the AVX2
/// level (the AVX-512 one keeps the widening; the stored kernels were measured on AVX2
/// only), with blocks of 16 tokens and heads of whole runs of 16.
fn reads_stored(isa: Isa, layout: KvLayout, rows: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    return rows <= STORED_ROWS
        && isa.has_avx2()
        && !isa.has_avx512()
        && layout.block_size == crate::avx2::STORED_BLOCK
        && layout.head_dim.is_multiple_of(crate::avx2::STORED_BLOCK);
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// [`scores`] against the span's keys read as `kv` stores them (only where [`reads_stored`]);
/// `[blocks, next]`: the span's blocks and the next span's, whose keys are prefetched on the
/// way.
fn stored_scores(
    isa: Isa,
    kv: StoredKv<'_>,
    [blocks, next]: [&[u32]; 2],
    kv_head: usize,
    q: &[f32],
    head_dim: usize,
    weights: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an AVX2 `Isa` is made only by `Isa::available`, after finding AVX2, FMA and F16C,
        // the target features of the `avx2` kernels.
        return unsafe { crate::avx2::stored_scores(kv, blocks, next, kv_head, q, head_dim, weights) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (kv, blocks, next, kv_head, q, head_dim, weights);
    panic!("no {isa} kernel reads a stored cache");
}

/// [`accumulate`] over the span's values read as `kv` stores them (only where
/// [`reads_stored`]); `[blocks, next]` as [`stored_scores`] takes them, the next span's
/// values prefetched on the way.
#[allow(clippy::too_many_arguments)]
fn stored_accumulate(
    isa: Isa,
    kv: StoredKv<'_>,
    [blocks, next]: [&[u32]; 2],
    kv_head: usize,
    p: &[f32],
    keys: usize,
    head_dim: usize,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: as in `stored_scores`.
        return unsafe { crate::avx2::stored_accumulate(kv, blocks, next, kv_head, p, keys, head_dim, out) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (kv, blocks, next, kv_head, p, keys, head_dim, out);
    panic!("no {isa} kernel reads a stored cache");
}

/// The tile's queries, `rows × head_dim`, each multiplied by the tile's scale and by
/// `log₂ e`: the scores come out in base-2 units, so the softmax's `e^(s - max)` is
/// `2^(s' - max')`, which costs fewer operations than `e^x` (no `ln 2` range reduction).
fn gather_scaled_queries(tile: QueryTile<'_>, head_dim: usize, q: &mut Vec<f32>) {
    let width = tile.group * head_dim;
    let factor = tile.scale * std::f32::consts::LOG2_E;
    q.clear();
    for t in 0..tile.tokens {
        let start = t * tile.stride + tile.kv_head * width;
        q.extend(tile.q[start..start + width].iter().map(|x| x * factor));
    }
}

/// One online-softmax step for each row of a span's weights (`rows × span`): row `i`'s first
/// `visible[i]` scores become weights, its running `max[i]` and `sum[i]` move on, and
/// `corrections[i]` receives the factor for its earlier value sum
/// ([`scalar_softmax_step`] says how).
pub(crate) struct SoftmaxRows<'a> {
    pub(crate) weights: &'a mut [f32],
    pub(crate) span: usize,
    pub(crate) visible: &'a [usize],
    pub(crate) max: &'a mut [f32],
    pub(crate) sum: &'a mut [f32],
    pub(crate) corrections: &'a mut [f32],
}

/// One row of [`SoftmaxRows`]: its scores, visible count, running maximum and sum, and where
/// its correction goes.
pub(crate) type SoftmaxRow<'r> = (&'r mut [f32], usize, &'r mut f32, &'r mut f32, &'r mut f32);

impl<'a> SoftmaxRows<'a> {
    /// The rows, one after another.
    #[inline]
    pub(crate) fn rows(self) -> impl Iterator<Item = SoftmaxRow<'a>> {
        let rows = self.weights.chunks_exact_mut(self.span).zip(self.visible);
        let running = self.max.iter_mut().zip(self.sum.iter_mut());
        rows.zip(running)
            .zip(self.corrections.iter_mut())
            .map(|(((row, &visible), (max, sum)), correction)| (row, visible, max, sum, correction))
    }
}

fn softmax_steps(isa: Isa, rows: SoftmaxRows<'_>) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx512() {
        // SAFETY: an AVX-512 `Isa` is made only by `Isa::available`, after finding AVX-512F,
        // AVX2, FMA and F16C, the target features of the `avx512` kernels.
        return unsafe { crate::avx512::softmax_steps(rows) };
    }
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an AVX2 `Isa` is made only by `Isa::available`, after finding AVX2, FMA and F16C,
        // the target features of the `avx2` kernels.
        return unsafe { crate::avx2::softmax_steps(rows) };
    }
    for (row, visible, max, sum, correction) in rows.rows() {
        *correction = scalar_softmax_step(row, visible, max, sum);
    }
}

/// One online-softmax step of a row over a block: the row's first `visible` scores (the
/// rest of the block lies past its position; scores in base-2 units, as
/// [`attend_tile`] computes them) become weights `2^(score - max)` in place, the
/// rest zero; `max` and `sum` (the running maximum, and sum of weights) move on; and the
/// returned factor is what the row's earlier value sum must be multiplied by to share the
/// new maximum. Panics if `visible` exceeds the row.
pub fn scalar_softmax_step(row: &mut [f32], visible: usize, max: &mut f32, sum: &mut f32) -> f32 {
    let block_max = row[..visible].iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let new_max = max.max(block_max);
    let correction = correction(*max, new_max);
    for x in &mut row[..visible] {
        *x = (*x - new_max).exp2();
    }
    row[visible..].fill(0.0);
    *sum = *sum * correction + row.iter().sum::<f32>();
    *max = new_max;
    correction
}

/// `2^(old_max - new_max)` (maxima in base-2 units): the factor that moves sums taken under
/// `old_max` to `new_max` (exactly 1 when the maximum stays).
#[inline]
pub(crate) fn correction(old_max: f32, new_max: f32) -> f32 {
    if old_max == new_max {
        1.0
    } else {
        (old_max - new_max).exp2()
    }
}

fn scores(isa: Isa, q: &[f32], head_dim: usize, keys: &[f32], block: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx512() {
        // SAFETY: an AVX-512 `Isa` is made only by `Isa::available`, after finding AVX-512F,
        // AVX2, FMA and F16C, the target features of the `avx512` kernels.
        return unsafe { crate::avx512::tile_scores(q, head_dim, keys, block, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an AVX2 `Isa` is made only by `Isa::available`, after finding AVX2, FMA and F16C,
        // the target features of the `avx2` kernels.
        return unsafe { crate::avx2::tile_scores(q, head_dim, keys, block, out) };
    }
    scalar_scores(q, head_dim, keys, block, out);
}

fn accumulate(isa: Isa, p: &[f32], block: usize, keys: usize, values: &[f32], head_dim: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx512() {
        // SAFETY: as in `scores`.
        return unsafe { crate::avx512::tile_accumulate(p, block, keys, values, head_dim, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: as in `scores`.
        return unsafe { crate::avx2::tile_accumulate(p, block, keys, values, head_dim, out) };
    }
    scalar_accumulate(p, block, keys, values, head_dim, out);
}

/// `scores[r][j] = Σ_d q[r][d] · keys[d][j]` for every row `r` of `q` (`rows × head_dim`)
/// and key `j` of a block (`keys`: `head_dim × block`). Panics if a slice is short.
pub fn scalar_scores(q: &[f32], head_dim: usize, keys: &[f32], block: usize, scores: &mut [f32]) {
    for (q_row, out) in q.chunks_exact(head_dim).zip(scores.chunks_exact_mut(block)) {
        out.fill(0.0);
        for (d, &x) in q_row.iter().enumerate() {
            for (o, &k) in out.iter_mut().zip(&keys[d * block..(d + 1) * block]) {
                *o += x * k;
            }
        }
    }
}

/// `out[r][..] += Σ_{j < keys} p[r][j] · values[j][..]` for every row `r` of `out` (`rows ×
/// head_dim`), `p` being `rows × block` weights and `values` a block's `block × head_dim`.
pub fn scalar_accumulate(p: &[f32], block: usize, keys: usize, values: &[f32], head_dim: usize, out: &mut [f32]) {
    for (out_row, p_row) in out.chunks_exact_mut(head_dim).zip(p.chunks(block)) {
        for (&w, value) in p_row[..keys].iter().zip(values.chunks_exact(head_dim)) {
            for (o, &v) in out_row.iter_mut().zip(value) {
                *o += w * v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_aligned_slices_start_on_a_cache_line_whatever_their_length() {
        let mut buffer = LineAligned::default();
        for len in [1, 7, 16, 378 * 128, 3, 64 * 128] {
            let slice = buffer.slice(len);
            assert_eq!(slice.len(), len);
            assert_eq!(slice.as_ptr() as usize % 64, 0, "a slice of {len}");
        }
    }

    #[test]
    fn a_token_stored_in_a_block_reads_back_through_the_layout() {
        let layout = KvLayout { kv_heads: 2, head_dim: 3, block_size: 4 };
        let mut keys = vec![0.0f32; 3 * layout.block_floats()];
        let mut values = keys.clone();
        let k = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let v = [7.0, 8.0, 9.0, 10.0, 11.0, 12.0];
        layout.store(&mut keys, &mut values, 2, 1, &k, &v, |x| x);
        // Block 2, head 1, dimension 2, slot 1: keys transposed, values row by row.
        assert_eq!(keys[2 * 24 + 12 + 2 * 4 + 1], 6.0);
        assert_eq!(values[2 * 24 + 12 + 3..2 * 24 + 12 + 6], [10.0, 11.0, 12.0]);
        layout.copy_prefix(&mut keys, &mut values, 2, 0, 2);
        assert_eq!(keys[12 + 2 * 4 + 1], 6.0);
        assert_eq!(values[12 + 3..12 + 6], [10.0, 11.0, 12.0]);
        assert_eq!(keys.iter().filter(|&&x| x != 0.0).count(), 12);
    }
}
