//! Quantized weight matrices and the batched matmul `out[m][n] = Σ_k x[m][k] · w[n][k]`.
//!
//! Activations are quantized once per call (to 8-bit blocks of 32 or super-blocks of 256,
//! as the weight type needs); the weight rows are split across the thread pool in small
//! chunks (work stealing keeps both cores busy when one is shared with another process);
//! each chunk walks its weight rows in tiles, each tile reading its weight blocks once for a
//! tile of activation rows.

use rayon::prelude::*;

use crate::formats::{
    ActQ8, ActQ8K, ActQ8x8, BlockQ4K, BlockQ5_0, BlockQ6K, BlockQ8_0, Interleaved, QuantType, GROUP_ROWS, QK, QK_K,
};
use crate::{avx2, scalar, Isa};

/// A weight matrix `[rows, cols]` in one of the quantized types, its GGUF rows interleaved
/// eight at a time ([`Interleaved`]; the last group padded with zero rows).
pub struct QuantMatrix {
    kind: QuantType,
    rows: usize,
    cols: usize,
    /// The blocks, 8-byte aligned.
    data: Vec<u64>,
}

impl std::fmt::Debug for QuantMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QuantMatrix({:?}, {}×{})", self.kind, self.rows, self.cols)
    }
}

impl QuantMatrix {
    /// Copies `bytes` (row after row of blocks, as stored in GGUF) into a matrix.
    pub fn new(kind: QuantType, rows: usize, cols: usize, bytes: &[u8]) -> Result<Self, String> {
        if !cols.is_multiple_of(kind.block_elems()) {
            return Err(format!("{kind:?} needs columns in multiples of {}, got {cols}", kind.block_elems()));
        }
        let expected = rows * cols / kind.block_elems() * kind.block_bytes();
        if bytes.len() != expected {
            return Err(format!("{kind:?} {rows}×{cols} needs {expected} bytes, got {}", bytes.len()));
        }
        Ok(match kind {
            QuantType::Q5_0 => Self::interleave::<BlockQ5_0>(kind, rows, cols, bytes),
            QuantType::Q8_0 => Self::interleave::<BlockQ8_0>(kind, rows, cols, bytes),
            QuantType::Q4K => Self::interleave::<BlockQ4K>(kind, rows, cols, bytes),
            QuantType::Q6K => Self::interleave::<BlockQ6K>(kind, rows, cols, bytes),
        })
    }

    /// Repacks GGUF rows of `B` blocks (`bytes`, already size-checked) eight at a time.
    fn interleave<B: Interleaved>(kind: QuantType, rows: usize, cols: usize, bytes: &[u8]) -> Self {
        let per_row = cols / kind.block_elems();
        let groups = rows.div_ceil(GROUP_ROWS);
        let mut data = vec![0u64; (groups * per_row * std::mem::size_of::<B::Packed>()).div_ceil(8)];
        let block_at = |row: usize, b: usize| -> B {
            if row >= rows {
                return B::ZERO;
            }
            // SAFETY: `new` checked that `bytes` holds `rows * per_row` blocks of `B`, which it
            // picked from `kind` among the four GGUF block types: `repr(C)` plain data without
            // padding, any bit pattern valid. `row < rows`, `b < per_row`, so the read is in
            // bounds; `read_unaligned` needs no alignment.
            unsafe { std::ptr::read_unaligned((bytes.as_ptr() as *const B).add(row * per_row + b)) }
        };
        let out = data.as_mut_ptr() as *mut B::Packed;
        for g in 0..groups {
            for b in 0..per_row {
                let blocks: [B; GROUP_ROWS] = std::array::from_fn(|r| block_at(g * GROUP_ROWS + r, b));
                // SAFETY: `data` holds `groups * per_row` packed blocks (rounded up to whole
                // `u64`s) and `g < groups`, `b < per_row`; a `u64` buffer is 8-byte aligned, and
                // every packed type's alignment is at most 8 (`repr(C)` of f16, u8, i8, u32).
                unsafe { out.add(g * per_row + b).write(B::pack(std::array::from_fn(|r| &blocks[r]))) };
            }
        }
        Self { kind, rows, cols, data }
    }

    /// The weight type.
    pub fn kind(&self) -> QuantType {
        self.kind
    }

    /// Number of rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (inputs).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes of the blocks.
    pub fn size_in_bytes(&self) -> usize {
        self.rows * self.cols / self.kind.block_elems() * self.kind.block_bytes()
    }

    /// Rows `8g..8g + 8`, interleaved (`B` must be this matrix's block type).
    fn group<B: Interleaved>(&self, g: usize) -> &[B::Packed] {
        // The four block types differ in size, so this also checks `B` is the matrix's type.
        assert_eq!(std::mem::size_of::<B>(), self.kind.block_bytes(), "not this matrix's block type");
        assert!(g < self.rows.div_ceil(GROUP_ROWS), "group {g} of a {}-row matrix", self.rows);
        let per_row = self.cols / self.kind.block_elems();
        // SAFETY: `interleave::<B>` filled `data` with `rows.div_ceil(8) * per_row` packed
        // blocks of `B` (its type checked above), and group `g` is one of them; the packed
        // types are `repr(C)` plain data, alignment at most 8 (`data` is `u64`s), any bit
        // pattern valid, and `data` is not written after `interleave`.
        unsafe { std::slice::from_raw_parts((self.data.as_ptr() as *const B::Packed).add(g * per_row), per_row) }
    }

    /// Row `r` of an interleaved matrix, unpacked to GGUF blocks.
    fn unpacked_row<B: Interleaved>(&self, r: usize) -> Vec<B> {
        self.group::<B>(r / GROUP_ROWS).iter().map(|b| B::unpack(b, r % GROUP_ROWS)).collect()
    }

    /// Dequantizes row `r` into `out` (`cols` long), for tests and embeddings.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        match self.kind {
            QuantType::Q8_0 => scalar::dequantize_q8_0(&self.unpacked_row(r), out),
            QuantType::Q5_0 => scalar::dequantize_q5_0(&self.unpacked_row(r), out),
            QuantType::Q4K => scalar::dequantize_q4k(&self.unpacked_row(r), out),
            QuantType::Q6K => scalar::dequantize_q6k(&self.unpacked_row(r), out),
        }
    }
}

/// Activations quantized for the matmuls that read them: `m` rows of `k` values.
#[derive(Debug, Default)]
pub struct QuantizedActivations {
    rows: usize,
    cols: usize,
    q8: Vec<ActQ8>,
    q8k: Vec<ActQ8K>,
    /// The Q8 blocks of rows `0..8 · wide_groups` side by side, eight rows at a time, for
    /// the wide kernel.
    q8x8: Vec<ActQ8x8>,
    /// Groups of eight rows in `q8x8`, a multiple of `avx2::WIDE_GROUPS` (0 when the wide
    /// kernel is not used).
    wide_groups: usize,
    has_q8: bool,
    has_q8k: bool,
}

impl QuantizedActivations {
    /// Quantizes `x` (`rows × cols`, row-major) into the block formats `kinds` need, reusing
    /// the buffers.
    pub fn quantize(&mut self, isa: Isa, x: &[f32], rows: usize, cols: usize, kinds: &[QuantType]) {
        assert_eq!(x.len(), rows * cols, "activations are not rows × cols");
        self.rows = rows;
        self.cols = cols;
        self.has_q8 = kinds.iter().any(|k| !k.uses_super_blocks());
        self.has_q8k = kinds.iter().any(|k| k.uses_super_blocks());
        if self.has_q8 {
            self.q8.resize(rows * cols / QK, ActQ8::default());
            in_parallel(x, &mut self.q8, QK, |x, out| {
                if isa.has_avx2() {
                    // SAFETY: an AVX2 `Isa` is made only by `Isa::available`, after finding AVX2, FMA and F16C,
                    // the target features of the `avx2` kernels.
                    unsafe { avx2::quantize_q8(x, out) }
                } else {
                    scalar::quantize_q8(x, out)
                }
            });
        }
        self.wide_groups = if isa.has_avx2() && kinds.contains(&QuantType::Q5_0) {
            rows / WIDE_TILE_ROWS * avx2::WIDE_GROUPS
        } else {
            0
        };
        if self.wide_groups > 0 {
            self.gather_wide();
        }
        if self.has_q8k {
            self.q8k.resize(rows * cols / QK_K, ActQ8K::default());
            in_parallel(x, &mut self.q8k, QK_K, |x, out| {
                if isa.has_avx2() {
                    // SAFETY: an AVX2 `Isa` is made only by `Isa::available`, after finding AVX2, FMA and F16C,
                    // the target features of the `avx2` kernels.
                    unsafe { avx2::quantize_q8k(x, out) }
                } else {
                    scalar::quantize_q8k(x, out)
                }
            });
        }
    }

    /// Fills `q8x8` from `q8`, one group of eight rows per parallel task.
    fn gather_wide(&mut self) {
        let per_row = self.cols / QK;
        let q8 = &self.q8;
        self.q8x8.resize(self.wide_groups * per_row, ActQ8x8::default());
        self.q8x8.par_chunks_mut(per_row).enumerate().for_each(|(g, group)| {
            for (b, packed) in group.iter_mut().enumerate() {
                *packed = ActQ8x8::gather(std::array::from_fn(|i| &q8[(GROUP_ROWS * g + i) * per_row + b]));
            }
        });
    }

    fn q8x8_group(&self, g: usize) -> &[ActQ8x8] {
        let per_row = self.cols / QK;
        &self.q8x8[g * per_row..(g + 1) * per_row]
    }

    fn q8_row(&self, r: usize) -> &[ActQ8] {
        let per_row = self.cols / QK;
        &self.q8[r * per_row..(r + 1) * per_row]
    }

    fn q8k_row(&self, r: usize) -> &[ActQ8K] {
        let per_row = self.cols / QK_K;
        &self.q8k[r * per_row..(r + 1) * per_row]
    }
}

/// Activations quantized per parallel task.
const ELEMENTS_PER_TASK: usize = 4096;

/// Runs `quantize` on matching pieces of `x` and `out` (one `out` block per `block_elems`
/// values) across the thread pool; blocks are independent, so the bytes do not change.
fn in_parallel<T: Send>(x: &[f32], out: &mut [T], block_elems: usize, quantize: impl Fn(&[f32], &mut [T]) + Sync) {
    let blocks_per_task = (ELEMENTS_PER_TASK / block_elems).max(1);
    x.par_chunks(blocks_per_task * block_elems)
        .zip(out.par_chunks_mut(blocks_per_task))
        .for_each(|(x, out)| quantize(x, out));
}

/// One job's output (`rows × cols` floats, row-major), which parallel tasks write disjoint
/// column ranges of at once: the one raw pointer of the matmul, since a task's columns are
/// not one contiguous piece that a slice could hand out.
#[derive(Clone, Copy)]
struct SharedOutput {
    ptr: *mut f32,
    rows: usize,
    cols: usize,
}

// SAFETY: a `SharedOutput` is only made in `matmul` from a `&mut [f32]` borrowed for the
// whole parallel region, and each task writes only its own columns (`run_rows`' contract),
// so sending or sharing it between the pool's threads makes no data race.
unsafe impl Send for SharedOutput {}
// SAFETY: as for `Send`.
unsafe impl Sync for SharedOutput {}

impl SharedOutput {
    /// Views `out` (`rows × cols`) for tasks that write disjoint columns of it; panics if
    /// `out` is not that size (the matmul's check of every job's output).
    fn new(out: &mut [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(out.len(), rows * cols, "matmul output has the wrong size");
        Self { ptr: out.as_mut_ptr(), rows, cols }
    }

    /// Writes `values` into row `row` from column `col` on. Panics outside the output.
    ///
    /// # Safety
    /// The buffer must still be borrowed for this output (alive, unaliased by anything but
    /// the tasks of one `matmul`), and no other thread may read or write these columns of
    /// this row meanwhile.
    unsafe fn write(self, row: usize, col: usize, values: &[f32]) {
        assert!(row < self.rows && col + values.len() <= self.cols, "write outside the matmul output");
        // SAFETY: the target lies inside the buffer (checked above); the buffer is alive and
        // nobody else touches these floats (the caller's contract).
        let target = unsafe { self.ptr.add(row * self.cols + col) };
        match <&[f32; GROUP_ROWS]>::try_from(values) {
            // A whole group: one 32-byte store rather than a `memmove` call.
            // SAFETY: as above; `write_unaligned` needs no alignment.
            Ok(lanes) => unsafe { target.cast::<[f32; GROUP_ROWS]>().write_unaligned(*lanes) },
            // SAFETY: as above; `values` is a different allocation (a task's own buffer).
            Err(_) => unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), target, values.len()) },
        }
    }
}

/// Weight rows per parallel task.
const ROWS_PER_TASK: usize = 32;

/// One matmul of a batch of matmuls that share their input.
pub struct MatmulJob<'a> {
    /// The weights.
    pub weights: &'a QuantMatrix,
    /// The output, `rows × weights.rows()`, row-major.
    pub out: &'a mut [f32],
}

/// Runs several matmuls over the same quantized activations in one parallel region.
pub fn matmul(isa: Isa, acts: &QuantizedActivations, jobs: &mut [MatmulJob<'_>]) {
    let m = acts.rows;
    for job in jobs.iter() {
        assert_eq!(job.weights.cols, acts.cols, "matmul inner dimensions differ");
        assert!(
            if job.weights.kind.uses_super_blocks() { acts.has_q8k } else { acts.has_q8 },
            "activations were not quantized for {:?}",
            job.weights.kind
        );
    }
    let tasks: Vec<(usize, SharedOutput, usize)> = jobs
        .iter_mut()
        .enumerate()
        .flat_map(|(j, job)| {
            let out = SharedOutput::new(job.out, m, job.weights.rows);
            (0..job.weights.rows).step_by(ROWS_PER_TASK).map(move |start| (j, out, start))
        })
        .collect();
    let weights: Vec<&QuantMatrix> = jobs.iter().map(|j| j.weights).collect();
    tasks.par_iter().for_each(|&(j, out, start)| {
        let w = weights[j];
        let end = (start + ROWS_PER_TASK).min(w.rows);
        // SAFETY: `jobs` (and so every output) stays mutably borrowed until the parallel
        // region ends; each task has its own `start`, so its columns `start..end` of job `j`'s
        // output are written by it alone.
        unsafe { run_rows(isa, w, acts, out, start, end) };
    });
}

/// Computes output columns `start..end` of `out` (`acts.rows × w.rows`) for every
/// activation row.
///
/// # Safety
/// As [`SharedOutput::write`] for columns `start..end` of every row: `out`'s buffer is
/// alive, and no other thread touches those columns until this returns.
unsafe fn run_rows(
    isa: Isa,
    w: &QuantMatrix,
    acts: &QuantizedActivations,
    out: SharedOutput,
    start: usize,
    end: usize,
) {
    // Writes `values` into activation row `row`'s outputs from column `col` on.
    let store = |row: usize, col: usize, values: &[f32]| {
        assert!(start <= col && col + values.len() <= end, "a task wrote outside its columns");
        // SAFETY: columns `start..end` (checked above) are this call's alone, by its contract.
        unsafe { out.write(row, col, values) }
    };
    let q8 = |r| acts.q8_row(r);
    let q8k = |r| acts.q8k_row(r);
    // Q5_0 on AVX2 takes its first rows in the wide kernel's tiles of 16; the rest, and every
    // other type, go through the narrow kernels.
    let wide_rows = if w.kind == QuantType::Q5_0 { run_wide_q5_0(isa, w, acts, &store, start, end) } else { 0 };
    let span = (start, end, wide_rows..acts.rows);
    match w.kind {
        QuantType::Q5_0 => run_groups::<BlockQ5_0, _>(isa, w, q8, &store, span, scalar::dot_q5_0, avx2::rows_q5_0x8),
        QuantType::Q8_0 => run_groups::<BlockQ8_0, _>(isa, w, q8, &store, span, scalar::dot_q8_0, avx2::rows_q8_0x8),
        QuantType::Q4K => run_groups::<BlockQ4K, _>(isa, w, q8k, &store, span, scalar::dot_q4k, avx2::rows_q4k_x8),
        QuantType::Q6K => run_groups::<BlockQ6K, _>(isa, w, q8k, &store, span, scalar::dot_q6k, avx2::rows_q6k_x8),
    }
}

/// Activation rows per kernel call (the k-quant kernels keep that many integer sums).
pub(crate) const TILE_ROWS: usize = 16;

/// An AVX2 kernel: eight interleaved weight rows × the activation rows `x` (at most
/// [`TILE_ROWS`]), into `out` (as long as `x`). Only the `avx2` kernels are passed as one:
/// safe functions but for the CPU features they need.
type GroupTileFn<P, A> = unsafe fn(w: &[P], x: &[&[A]], out: &mut [[f32; GROUP_ROWS]]);

/// Computes output columns `start..end` (`start` a multiple of 8) for activation rows
/// `rows` (`span = (start, end, rows)`), eight weight rows at a time: with the scalar
/// reference on each unpacked row, or in AVX2 tiles.
///
fn run_groups<'a, B: Interleaved, A: 'a>(
    isa: Isa,
    w: &QuantMatrix,
    act_row: impl Fn(usize) -> &'a [A],
    store: &impl Fn(usize, usize, &[f32]),
    (start, end, rows): (usize, usize, std::ops::Range<usize>),
    scalar_dot: fn(&[B], &[A]) -> f32,
    tile: GroupTileFn<B::Packed, A>,
) {
    debug_assert_eq!(start % GROUP_ROWS, 0);
    let (mut r, m) = (rows.start, rows.end);
    while r < m {
        let mr = (m - r).min(TILE_ROWS);
        let x: [&[A]; TILE_ROWS] = std::array::from_fn(|i| act_row(r + i.min(mr - 1)));
        for g in start / GROUP_ROWS..end.div_ceil(GROUP_ROWS) {
            let group = w.group::<B>(g);
            let first = g * GROUP_ROWS;
            let lanes = (end - first).min(GROUP_ROWS);
            let mut out = [[0f32; GROUP_ROWS]; TILE_ROWS];
            if isa.has_avx2() {
                // SAFETY: `tile` is one of the `avx2` kernels, whose only condition is the CPU
                // features they are compiled for (AVX2, FMA, F16C), and an AVX2 `Isa` is made
                // only by `Isa::available` after finding them.
                unsafe { tile(group, &x[..mr], &mut out[..mr]) }
            } else {
                for (row_out, x_row) in out.iter_mut().zip(x).take(mr) {
                    *row_out = scalar::dot_interleaved::<B, A>(group, x_row, scalar_dot);
                }
            }
            for (i, row_out) in out.iter().enumerate().take(mr) {
                store(r + i, first, &row_out[..lanes]);
            }
        }
        r += mr;
    }
}

/// Computes output columns `start..end` of a Q5_0 matrix for the activation rows laid side
/// by side in groups of eight ([`QuantizedActivations::q8x8`]), `avx2::WIDE_GROUPS` groups
/// at a time with the wide AVX2 kernel. Returns how many rows (from row 0) it covered: a
/// multiple of [`WIDE_TILE_ROWS`], none where the activations have no wide groups or the
/// ISA is not AVX2.
fn run_wide_q5_0(
    isa: Isa,
    w: &QuantMatrix,
    acts: &QuantizedActivations,
    store: &impl Fn(usize, usize, &[f32]),
    start: usize,
    end: usize,
) -> usize {
    if !isa.has_avx2() {
        return 0;
    }
    let tiles = acts.wide_groups / avx2::WIDE_GROUPS;
    for t in 0..tiles {
        let x = std::array::from_fn(|g| acts.q8x8_group(avx2::WIDE_GROUPS * t + g));
        for wg in start / GROUP_ROWS..end.div_ceil(GROUP_ROWS) {
            let first = wg * GROUP_ROWS;
            let lanes = (end - first).min(GROUP_ROWS);
            let mut out = [[0f32; GROUP_ROWS]; WIDE_TILE_ROWS];
            if isa.has_avx512_vnni() {
                // SAFETY: an AVX-512 VNNI `Isa` is made only by `Isa::available` after finding
                // AVX-512F, AVX-512BW, AVX-512 VNNI, AVX2, FMA and F16C, this kernel's features.
                unsafe { crate::avx512::rows_q5_0x8_wide(w.group::<BlockQ5_0>(wg), x, &mut out) };
            } else {
                // SAFETY: `isa` is AVX2 (checked above), made only by `Isa::available` after
                // finding AVX2, FMA and F16C, the target features of this kernel.
                unsafe { avx2::rows_q5_0x8_wide(w.group::<BlockQ5_0>(wg), x, &mut out) };
            }
            for (i, row_out) in out.iter().enumerate() {
                store(WIDE_TILE_ROWS * t + i, first, &row_out[..lanes]);
            }
        }
    }
    WIDE_TILE_ROWS * tiles
}

/// Activation rows per call of the wide kernel.
const WIDE_TILE_ROWS: usize = avx2::WIDE_GROUPS * GROUP_ROWS;
