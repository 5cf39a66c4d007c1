//! Quantized weight matrices and the batched matmul `out[m][n] = Σ_k x[m][k] · w[n][k]`.
//!
//! Activations are quantized once per call (to 8-bit blocks of 32 or super-blocks of 256,
//! as the weight type needs); the weight rows are split across the thread pool in small
//! chunks (work stealing keeps both cores busy when one is shared with another process);
//! each chunk walks its weight rows in tiles, each tile reading its weight blocks once for a
//! tile of activation rows.

use rayon::prelude::*;

use crate::formats::{
    ActQ8, ActQ8K, BlockQ4K, BlockQ5_0, BlockQ5_0x8, BlockQ6K, BlockQ8_0, BlockQ8_0x8, Interleaved, QuantType,
    GROUP_ROWS, QK, QK_K,
};
use crate::{avx2, scalar, Isa};

/// A weight matrix `[rows, cols]` in one of the quantized types: GGUF's block layout for
/// the k-quants; Q5_0 and Q8_0 rows interleaved eight at a time ([`Interleaved`]; the last
/// group padded with zero rows).
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
        match kind {
            QuantType::Q5_0 => return Ok(Self::interleave::<BlockQ5_0>(kind, rows, cols, bytes)),
            QuantType::Q8_0 => return Ok(Self::interleave::<BlockQ8_0>(kind, rows, cols, bytes)),
            QuantType::Q4K | QuantType::Q6K => {}
        }
        let mut data = vec![0u64; expected.div_ceil(8)];
        // SAFETY: `data` holds at least `expected` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), data.as_mut_ptr() as *mut u8, expected) };
        Ok(Self { kind, rows, cols, data })
    }

    /// Repacks GGUF rows of `B` blocks (`bytes`, already size-checked) eight at a time.
    fn interleave<B: Interleaved>(kind: QuantType, rows: usize, cols: usize, bytes: &[u8]) -> Self {
        let per_row = cols / QK;
        let groups = rows.div_ceil(GROUP_ROWS);
        let mut data = vec![0u64; (groups * per_row * std::mem::size_of::<B::Packed>()).div_ceil(8)];
        let block_at = |row: usize, b: usize| -> B {
            if row >= rows {
                return B::ZERO;
            }
            // SAFETY: `bytes` holds `rows * per_row` blocks; `read_unaligned` needs no alignment.
            unsafe { std::ptr::read_unaligned((bytes.as_ptr() as *const B).add(row * per_row + b)) }
        };
        let out = data.as_mut_ptr() as *mut B::Packed;
        for g in 0..groups {
            for b in 0..per_row {
                let blocks: [B; GROUP_ROWS] = std::array::from_fn(|r| block_at(g * GROUP_ROWS + r, b));
                // SAFETY: `data` holds `groups * per_row` packed blocks, 8-byte aligned.
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

    /// Rows `8g..8g + 8`, interleaved (`B` must be this matrix's block type, Q5_0 or Q8_0).
    fn group<B: Interleaved>(&self, g: usize) -> &[B::Packed] {
        debug_assert_eq!(std::mem::size_of::<B>(), self.kind.block_bytes());
        let per_row = self.cols / QK;
        // SAFETY: `data` holds `rows.div_ceil(8) * per_row` packed blocks (made in
        // `interleave`); the packed types are `repr(C)`, alignment ≤ 8, any bit pattern valid.
        unsafe { std::slice::from_raw_parts((self.data.as_ptr() as *const B::Packed).add(g * per_row), per_row) }
    }

    /// Row `r` of an interleaved matrix, unpacked to GGUF blocks.
    fn unpacked_row<B: Interleaved>(&self, r: usize) -> Vec<B> {
        self.group::<B>(r / GROUP_ROWS).iter().map(|b| B::unpack(b, r % GROUP_ROWS)).collect()
    }

    /// Row `r` as blocks of type `B` (which must be this matrix's block type, a k-quant).
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
            QuantType::Q8_0 => scalar::dequantize_q8_0(&self.unpacked_row(r), out),
            QuantType::Q5_0 => scalar::dequantize_q5_0(&self.unpacked_row(r), out),
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
    let n_total = w.rows;
    let store = |row: usize, col: usize, value: f32| *out.0.add(row * n_total + col) = value;
    match w.kind {
        QuantType::Q5_0 => run_groups::<BlockQ5_0>(isa, w, acts, &store, start, end, scalar::dot_q5_0, tile_q5_0),
        QuantType::Q8_0 => run_groups::<BlockQ8_0>(isa, w, acts, &store, start, end, scalar::dot_q8_0, tile_q8_0),
        QuantType::Q4K => run_kquant_rows::<BlockQ4K>(isa, w, acts, &store, start, end, scalar::dot_q4k, dispatch_q4k),
        QuantType::Q6K => run_kquant_rows::<BlockQ6K>(isa, w, acts, &store, start, end, scalar::dot_q6k, dispatch_q6k),
    }
}

/// Computes output columns `start..end` of a Q4_K or Q6_K matrix (GGUF layout): row by row
/// with the scalar reference, or in AVX2 tiles.
///
/// # Safety
/// As [`run_rows`].
#[allow(clippy::too_many_arguments)]
unsafe fn run_kquant_rows<B>(
    isa: Isa,
    w: &QuantMatrix,
    acts: &QuantizedActivations,
    store: &impl Fn(usize, usize, f32),
    start: usize,
    end: usize,
    scalar_dot: fn(&[B], &[ActQ8K]) -> f32,
    tile: TileFn<B, ActQ8K>,
) {
    let m = acts.rows;
    match isa {
        Isa::Scalar => {
            for n in start..end {
                for r in 0..m {
                    store(r, n, scalar_dot(w.row(n), acts.q8k_row(r)));
                }
            }
        }
        Isa::Avx2 => tiles::<B, ActQ8K>(w, start, end, m, |r| acts.q8k_row(r), store, tile),
    }
}

/// Activation rows per interleaved tile.
const GROUP_MR: usize = 4;

/// An interleaved tile: eight weight rows × `mr` (≤ [`GROUP_MR`]) activation rows; rows of
/// `out` past `mr` are left alone.
type GroupTileFn<P> = unsafe fn(w: &[P], x: [&[ActQ8]; GROUP_MR], mr: usize, out: &mut [[f32; GROUP_ROWS]; GROUP_MR]);

/// Computes output columns `start..end` (`start` a multiple of 8) of a Q5_0 or Q8_0
/// matrix, eight weight rows at a time.
///
/// # Safety
/// As [`run_rows`].
#[allow(clippy::too_many_arguments)]
unsafe fn run_groups<B: Interleaved>(
    isa: Isa,
    w: &QuantMatrix,
    acts: &QuantizedActivations,
    store: &impl Fn(usize, usize, f32),
    start: usize,
    end: usize,
    scalar_dot: fn(&[B], &[ActQ8]) -> f32,
    tile: GroupTileFn<B::Packed>,
) {
    debug_assert_eq!(start % GROUP_ROWS, 0);
    let m = acts.rows;
    for g in start / GROUP_ROWS..end.div_ceil(GROUP_ROWS) {
        let group = w.group::<B>(g);
        let rows = (g * GROUP_ROWS..(g + 1) * GROUP_ROWS).take_while(|&n| n < end);
        let mut r = 0;
        while r < m {
            let mr = (m - r).min(GROUP_MR);
            let mut out = [[0f32; GROUP_ROWS]; GROUP_MR];
            match isa {
                Isa::Scalar => {
                    for (i, row_out) in out.iter_mut().enumerate().take(mr) {
                        *row_out = scalar::dot_interleaved::<B>(group, acts.q8_row(r + i), scalar_dot);
                    }
                }
                Isa::Avx2 => tile(group, std::array::from_fn(|i| acts.q8_row(r + i.min(mr - 1))), mr, &mut out),
            }
            for (i, row_out) in out.iter().enumerate().take(mr) {
                for (lane, n) in rows.clone().enumerate() {
                    store(r + i, n, row_out[lane]);
                }
            }
            r += mr;
        }
    }
}

/// Picks the monomorphised AVX2 interleaved tile for `mr` activation rows.
macro_rules! dispatch_group {
    ($name:ident, $kernel:ident, $packed:ty) => {
        unsafe fn $name(w: &[$packed], x: [&[ActQ8]; GROUP_MR], mr: usize, out: &mut [[f32; GROUP_ROWS]; GROUP_MR]) {
            fn run<const MR: usize>(w: &[$packed], x: [&[ActQ8]; GROUP_MR], out: &mut [[f32; GROUP_ROWS]; GROUP_MR]) {
                let mut tile_out = [[0f32; GROUP_ROWS]; MR];
                // SAFETY: only reached with `Isa::Avx2`, which was detected.
                unsafe { avx2::$kernel::<MR>(w, std::array::from_fn(|i| x[i]), &mut tile_out) };
                out[..MR].copy_from_slice(&tile_out);
            }
            match mr {
                1 => run::<1>(w, x, out),
                2 => run::<2>(w, x, out),
                3 => run::<3>(w, x, out),
                _ => run::<4>(w, x, out),
            }
        }
    };
}

dispatch_group!(tile_q5_0, tile_q5_0x8, BlockQ5_0x8);
dispatch_group!(tile_q8_0, tile_q8_0x8, BlockQ8_0x8);

/// The largest k-quant tile: activation rows × weight rows.
const MR: usize = 4;
const NR: usize = 2;

/// The k-quant tile shape for a batch size: `(activation rows, weight rows)`. One
/// activation row streams two weight rows at once (memory-bound); more rows share each
/// decoded weight block among up to 4 activation rows.
fn tile_shape(m: usize) -> (usize, usize) {
    if m == 1 {
        (1, 2)
    } else {
        (MR, NR)
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
    let (mr_max, nr_max) = tile_shape(m);
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

dispatch!(dispatch_q4k, tile_q4k, BlockQ4K, ActQ8K,
    [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (4, 1), (4, 2)]);
dispatch!(dispatch_q6k, tile_q6k, BlockQ6K, ActQ8K,
    [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (4, 1), (4, 2)]);
