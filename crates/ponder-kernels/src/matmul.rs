//! Quantized weight matrices and the batched matmul `out[m][n] = Σ_k x[m][k] · w[n][k]`.
//!
//! Activations are quantized once per call (to 8-bit blocks of 32 or super-blocks of 256,
//! as the weight type needs); the weight rows are split across the thread pool in small
//! chunks (work stealing keeps both cores busy when one is shared with another process);
//! each chunk walks its weight rows in tiles, each tile reading its weight blocks once for a
//! tile of activation rows.

use rayon::prelude::*;

use crate::formats::{ActQ8, ActQ8K, BlockQ4K, BlockQ5_0, BlockQ6K, BlockQ8_0, QuantType, QK, QK_K};
use crate::{avx2, scalar, Isa};

/// A weight matrix `[rows, cols]` in one of the quantized types, in GGUF's block layout.
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
        if cols % kind.block_elems() != 0 {
            return Err(format!("{kind:?} needs columns in multiples of {}, got {cols}", kind.block_elems()));
        }
        let expected = rows * cols / kind.block_elems() * kind.block_bytes();
        if bytes.len() != expected {
            return Err(format!("{kind:?} {rows}×{cols} needs {expected} bytes, got {}", bytes.len()));
        }
        let mut data = vec![0u64; expected.div_ceil(8)];
        // SAFETY: `data` holds at least `expected` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), data.as_mut_ptr() as *mut u8, expected) };
        Ok(Self { kind, rows, cols, data })
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

    /// Row `r` as blocks of type `B` (which must be this matrix's block type).
    fn row<B>(&self, r: usize) -> &[B] {
        debug_assert_eq!(std::mem::size_of::<B>(), self.kind.block_bytes());
        let per_row = self.cols / self.kind.block_elems();
        // SAFETY: `data` holds `rows * per_row` blocks of `B` (checked in `new`); every block
        // type is `repr(C)` with alignment ≤ 8, and all bit patterns are valid.
        unsafe { std::slice::from_raw_parts((self.data.as_ptr() as *const B).add(r * per_row), per_row) }
    }

    /// Dequantizes row `r` into `out` (`cols` long), for tests and embeddings.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        match self.kind {
            QuantType::Q8_0 => scalar::dequantize_q8_0(self.row(r), out),
            QuantType::Q5_0 => scalar::dequantize_q5_0(self.row(r), out),
            QuantType::Q4K => scalar::dequantize_q4k(self.row(r), out),
            QuantType::Q6K => scalar::dequantize_q6k(self.row(r), out),
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
            match isa {
                // SAFETY: the ISA was detected.
                Isa::Avx2 => unsafe { avx2::quantize_q8(x, &mut self.q8) },
                Isa::Scalar => scalar::quantize_q8(x, &mut self.q8),
            }
        }
        if self.has_q8k {
            self.q8k.resize(rows * cols / QK_K, ActQ8K::default());
            match isa {
                // SAFETY: the ISA was detected.
                Isa::Avx2 => unsafe { avx2::quantize_q8k(x, &mut self.q8k) },
                Isa::Scalar => scalar::quantize_q8k(x, &mut self.q8k),
            }
        }
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

/// A pointer to an output buffer that tasks write disjoint parts of.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: every task writes its own columns only.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Weight rows per parallel task.
const ROWS_PER_TASK: usize = 16;

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
        assert_eq!(job.out.len(), m * job.weights.rows, "matmul output has the wrong size");
        assert!(
            if job.weights.kind.uses_super_blocks() { acts.has_q8k } else { acts.has_q8 },
            "activations were not quantized for {:?}",
            job.weights.kind
        );
    }
    let tasks: Vec<(usize, OutPtr, usize)> = jobs
        .iter_mut()
        .enumerate()
        .flat_map(|(j, job)| {
            let out = OutPtr(job.out.as_mut_ptr());
            (0..job.weights.rows).step_by(ROWS_PER_TASK).map(move |start| (j, out, start))
        })
        .collect();
    let weights: Vec<&QuantMatrix> = jobs.iter().map(|j| j.weights).collect();
    tasks.par_iter().for_each(|&(j, out, start)| {
        let w = weights[j];
        let end = (start + ROWS_PER_TASK).min(w.rows);
        // SAFETY: `out` points at `m × w.rows` floats; this task writes columns start..end.
        unsafe { run_rows(isa, w, acts, out, start, end) };
    });
}

/// Computes output columns `start..end` for every activation row.
///
/// # Safety
/// `out` must point at `acts.rows × w.rows` floats no one else writes in these columns.
unsafe fn run_rows(isa: Isa, w: &QuantMatrix, acts: &QuantizedActivations, out: OutPtr, start: usize, end: usize) {
    let m = acts.rows;
    let n_total = w.rows;
    let store = |row: usize, col: usize, value: f32| *out.0.add(row * n_total + col) = value;
    match isa {
        Isa::Scalar => {
            for n in start..end {
                for r in 0..m {
                    let value = match w.kind {
                        QuantType::Q8_0 => scalar::dot_q8_0(w.row(n), acts.q8_row(r)),
                        QuantType::Q5_0 => scalar::dot_q5_0(w.row(n), acts.q8_row(r)),
                        QuantType::Q4K => scalar::dot_q4k(w.row(n), acts.q8k_row(r)),
                        QuantType::Q6K => scalar::dot_q6k(w.row(n), acts.q8k_row(r)),
                    };
                    store(r, n, value);
                }
            }
        }
        Isa::Avx2 => match w.kind {
            QuantType::Q8_0 => tiles::<BlockQ8_0, ActQ8>(w, start, end, m, |r| acts.q8_row(r), &store, dispatch_q8_0),
            QuantType::Q5_0 => tiles::<BlockQ5_0, ActQ8>(w, start, end, m, |r| acts.q8_row(r), &store, dispatch_q5_0),
            QuantType::Q4K => tiles::<BlockQ4K, ActQ8K>(w, start, end, m, |r| acts.q8k_row(r), &store, dispatch_q4k),
            QuantType::Q6K => tiles::<BlockQ6K, ActQ8K>(w, start, end, m, |r| acts.q8k_row(r), &store, dispatch_q6k),
        },
    }
}

/// The largest tile: activation rows × weight rows.
const MR: usize = 8;
const NR: usize = 2;

/// The tile shape for a weight type and batch size: `(activation rows, weight rows)`. One
/// activation row streams two weight rows at once (memory-bound); more rows share each
/// decoded weight block among up to 8 activation rows (32-element types) or 4 (k-quants,
/// whose tiles need more registers).
fn tile_shape(kind: QuantType, m: usize) -> (usize, usize) {
    match (kind.uses_super_blocks(), m) {
        (_, 1) => (1, 2),
        (false, _) => (8, 1),
        (true, _) => (4, 2),
    }
}

/// A tile of `mr` activation rows × `nr` weight rows; entries past the counts are ignored.
type TileFn<B, A> = unsafe fn(w: [&[B]; NR], nr: usize, x: [&[A]; MR], mr: usize, out: &mut [[f32; NR]; MR]);

/// Walks weight rows `start..end` in tiles.
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn tiles<'a, B: 'a, A: 'a>(
    w: &'a QuantMatrix,
    start: usize,
    end: usize,
    m: usize,
    act_row: impl Fn(usize) -> &'a [A],
    store: &impl Fn(usize, usize, f32),
    tile: TileFn<B, A>,
) {
    let (mr_max, nr_max) = tile_shape(w.kind, m);
    let mut n = start;
    while n < end {
        let nr = (end - n).min(nr_max);
        let w_rows: [&[B]; NR] = std::array::from_fn(|i| w.row::<B>(n + i.min(nr - 1)));
        let mut r = 0;
        while r < m {
            let mr = (m - r).min(mr_max);
            let x_rows: [&[A]; MR] = std::array::from_fn(|i| act_row(r + i.min(mr - 1)));
            let mut out = [[0f32; NR]; MR];
            tile(w_rows, nr, x_rows, mr, &mut out);
            for (i, row) in out.iter().enumerate().take(mr) {
                for (j, &value) in row.iter().enumerate().take(nr) {
                    store(r + i, n + j, value);
                }
            }
            r += mr;
        }
        n += nr;
    }
}

/// Picks the monomorphised AVX2 tile for the tile's actual shape.
macro_rules! dispatch {
    ($name:ident, $kernel:ident, $block:ty, $act:ty, [$(($mr:literal, $nr:literal)),*]) => {
        unsafe fn $name(w: [&[$block]; NR], nr: usize, x: [&[$act]; MR], mr: usize, out: &mut [[f32; NR]; MR]) {
            match (mr, nr) {
                $(($mr, $nr) => {
                    let mut tile_out = [[0f32; $nr]; $mr];
                    avx2::$kernel::<$mr, $nr>(std::array::from_fn(|i| w[i]), std::array::from_fn(|i| x[i]), &mut tile_out);
                    for i in 0..$mr {
                        out[i][..$nr].copy_from_slice(&tile_out[i]);
                    }
                })*
                _ => unreachable!("no {mr}×{nr} tile for this type"),
            }
        }
    };
}

dispatch!(dispatch_q8_0, tile_q8_0, BlockQ8_0, ActQ8,
    [(1, 1), (1, 2), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1), (8, 1)]);
dispatch!(dispatch_q5_0, tile_q5_0, BlockQ5_0, ActQ8,
    [(1, 1), (1, 2), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1), (8, 1)]);
dispatch!(dispatch_q4k, tile_q4k, BlockQ4K, ActQ8K,
    [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (4, 1), (4, 2)]);
dispatch!(dispatch_q6k, tile_q6k, BlockQ6K, ActQ8K,
    [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (4, 1), (4, 2)]);
