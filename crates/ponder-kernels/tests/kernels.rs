//! Every SIMD kernel against the scalar reference on random inputs, and the matmul's
//! batch and thread invariance.

use half::f16;
use ponder_kernels::formats::{ActQ8, ActQ8K, BlockQ4K, BlockQ5_0, BlockQ6K, BlockQ8_0, QuantType, QK, QK_K};
use ponder_kernels::{matmul, scalar, Isa, MatmulJob, QuantMatrix, QuantizedActivations};
use proptest::prelude::*;

const TYPES: [QuantType; 4] = [QuantType::Q8_0, QuantType::Q5_0, QuantType::Q4K, QuantType::Q6K];

/// xorshift64*: deterministic random bytes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// Random blocks of `kind` for a `rows × cols` matrix; scales are `scale` (random if `None`).
fn random_matrix(kind: QuantType, rows: usize, cols: usize, seed: u64, scale: Option<f32>) -> QuantMatrix {
    let mut rng = Rng(seed | 1);
    let blocks = rows * cols / kind.block_elems();
    let mut bytes: Vec<u8> = (0..blocks * kind.block_bytes()).map(|_| rng.next() as u8).collect();
    let set_f16 = |bytes: &mut [u8], at: usize, rng: &mut Rng| {
        let value = scale.unwrap_or_else(|| 0.01 + 0.02 * rng.unit().abs());
        bytes[at..at + 2].copy_from_slice(&f16::from_f32(value).to_le_bytes());
    };
    for b in 0..blocks {
        let block = &mut bytes[b * kind.block_bytes()..(b + 1) * kind.block_bytes()];
        match kind {
            QuantType::Q8_0 => {
                set_f16(block, 0, &mut rng);
                // Q8_0 weights stay within ±127.
                for q in &mut block[2..] {
                    if *q == 0x80 {
                        *q = 0x81;
                    }
                }
            }
            QuantType::Q5_0 => set_f16(block, 0, &mut rng),
            QuantType::Q4K => {
                set_f16(block, 0, &mut rng);
                set_f16(block, 2, &mut rng);
            }
            QuantType::Q6K => set_f16(block, 208, &mut rng),
        }
    }
    QuantMatrix::new(kind, rows, cols, &bytes).unwrap()
}

fn random_activations(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed | 1);
    (0..rows * cols).map(|_| rng.unit() * 3.0).collect()
}

fn run(isa: Isa, w: &QuantMatrix, x: &[f32], rows: usize) -> Vec<f32> {
    let mut acts = QuantizedActivations::default();
    acts.quantize(isa, x, rows, w.cols(), &[w.kind()]);
    let mut out = vec![0.0; rows * w.rows()];
    matmul(isa, &acts, &mut [MatmulJob { weights: w, out: &mut out }]);
    out
}

fn simd_available() -> bool {
    Isa::detect().is_simd()
}

#[test]
fn quantized_activations_are_identical_on_every_isa() {
    if !simd_available() {
        return;
    }
    for seed in 1..20 {
        let x = random_activations(1, 512, seed);
        // Exact ties and zeros too.
        let mut x = x;
        x[3] = 0.0;
        x[7] = 127.0 / 254.0 * x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let mut a = QuantizedActivations::default();
        let mut b = QuantizedActivations::default();
        a.quantize(Isa::detect(), &x, 1, 512, &[QuantType::Q8_0, QuantType::Q4K]);
        b.quantize(Isa::SCALAR, &x, 1, 512, &[QuantType::Q8_0, QuantType::Q4K]);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}

#[test]
fn integer_dot_products_are_exact() {
    // Unit scales keep every float sum an exactly representable integer.
    if !simd_available() {
        return;
    }
    // One tile of 16 rows (for Q5_0, the wide kernel) and three more.
    const ROWS: usize = 19;
    for kind in TYPES {
        for seed in 1..8 {
            let w = random_matrix(kind, 6, 512, seed, Some(1.0));
            // Activations whose quantization scale is 1: integers in [-127, 127] with one 127.
            let mut rng = Rng(seed * 31);
            let mut x: Vec<f32> = (0..ROWS * 512).map(|_| ((rng.next() % 255) as i32 - 127) as f32).collect();
            for row in 0..ROWS {
                for block in 0..512 / QK {
                    x[row * 512 + block * QK] = 127.0;
                }
            }
            let simd = run(Isa::detect(), &w, &x, ROWS);
            let reference = run(Isa::SCALAR, &w, &x, ROWS);
            assert_eq!(simd, reference, "{kind:?} seed {seed}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// With real scales, SIMD and scalar differ only by float summation order.
    #[test]
    fn simd_matches_scalar_within_float_rounding(seed in 1u64..u64::MAX, rows in 1usize..35, n in 1usize..20) {
        prop_assume!(simd_available());
        for kind in TYPES {
            let cols = 2 * QK_K;
            let w = random_matrix(kind, n, cols, seed, None);
            let x = random_activations(rows, cols, seed.wrapping_mul(7));
            let simd = run(Isa::detect(), &w, &x, rows);
            let reference = run(Isa::SCALAR, &w, &x, rows);
            let mut weights = vec![0.0; cols];
            for j in 0..n {
                w.dequantize_row(j, &mut weights);
                for r in 0..rows {
                    // Rounding error scales with the terms summed, not with their (possibly
                    // cancelling) total.
                    let magnitude: f32 = weights.iter().zip(&x[r * cols..]).map(|(a, b)| (a * b).abs()).sum();
                    let (a, b) = (simd[r * n + j], reference[r * n + j]);
                    prop_assert!((a - b).abs() <= 1e-5 * magnitude + 1e-6, "{kind:?}: {a} vs {b} (terms {magnitude})");
                }
            }
        }
    }
}

#[test]
fn matmul_matches_dequantized_weights_within_activation_rounding() {
    for kind in TYPES {
        let (n, k, m) = (5, 512, 3);
        let w = random_matrix(kind, n, k, 99, None);
        let x = random_activations(m, k, 5);
        let out = run(Isa::detect(), &w, &x, m);
        let mut row = vec![0.0; k];
        for j in 0..n {
            w.dequantize_row(j, &mut row);
            for r in 0..m {
                let exact: f64 =
                    row.iter().zip(&x[r * k..(r + 1) * k]).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
                let magnitude: f64 =
                    row.iter().zip(&x[r * k..]).map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs()).sum();
                let got = f64::from(out[r * n + j]);
                // 8-bit activations: relative error well under 1% of the summed magnitude.
                assert!((got - exact).abs() <= 0.01 * magnitude, "{kind:?} ({r},{j}): {got} vs {exact}");
            }
        }
    }
}

#[test]
fn a_rows_result_does_not_depend_on_the_batch() {
    for kind in TYPES {
        // 37 activation rows: two tiles of 16 (for Q5_0, two calls of the wide kernel) and
        // five rows more; alone, a row goes through the narrow kernel.
        let w = random_matrix(kind, 37, 512, 3, None);
        let x = random_activations(37, 512, 4);
        let batched = run(Isa::detect(), &w, &x, 37);
        for r in 0..37 {
            let alone = run(Isa::detect(), &w, &x[r * 512..(r + 1) * 512], 1);
            assert_eq!(alone[..], batched[r * 37..(r + 1) * 37], "{kind:?} row {r}");
        }
    }
}

#[test]
fn every_simd_level_gives_the_same_bits() {
    // 37 rows: two wide tiles of 16 (Q5_0's wide kernel, VNNI where the CPU has it) and five
    // rows through the narrow kernels; real scales, so only identical float steps agree.
    let levels = &Isa::available()[1..];
    for kind in TYPES {
        let w = random_matrix(kind, 21, 512, 11, None);
        let x = random_activations(37, 512, 12);
        let first = levels.first().map(|&isa| run(isa, &w, &x, 37));
        for &isa in levels {
            assert_eq!(Some(run(isa, &w, &x, 37)), first, "{kind:?} on {isa}");
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let w = random_matrix(QuantType::Q5_0, 300, 896, 8, None);
    let x = random_activations(5, 896, 9);
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| run(Isa::detect(), &w, &x, 5))
    };
    assert_eq!(on(1), on(2));
    assert_eq!(on(1), on(3));
}

/// Checks an interleaved type against its GGUF blocks: `parse` reads one block's bytes,
/// `scale_at` are the byte offsets of its f16 scales, `quantize`, `dequantize` and `dot`
/// the GGUF-layout references.
fn check_interleaved<B, A: Default + Clone>(
    kind: QuantType,
    scale_at: &[usize],
    parse: impl Fn(&[u8]) -> B,
    quantize: fn(&[f32], &mut [A]),
    dequantize: fn(&[B], &mut [f32]),
    dot: fn(&[B], &[A]) -> f32,
) {
    // 21 rows: two full groups of eight and a padded one.
    let (rows, cols, size) = (21, 512, kind.block_bytes());
    let mut rng = Rng(5);
    // Scales fixed at a finite f16 (high byte 0x2c); Q8_0 values kept within ±127.
    let bytes: Vec<u8> = (0..rows * cols / kind.block_elems() * size)
        .map(|i| match (i % size, rng.next() as u8) {
            (at, _) if scale_at.contains(&(at - at % 2)) && at % 2 == 1 => 0x2c,
            (_, 0x80) if kind == QuantType::Q8_0 => 0x81,
            (_, b) => b,
        })
        .collect();
    let w = QuantMatrix::new(kind, rows, cols, &bytes).unwrap();
    let blocks: Vec<B> = bytes.chunks_exact(size).map(&parse).collect();
    let per_row = cols / kind.block_elems();
    let (mut got, mut want) = (vec![0.0; cols], vec![0.0; cols]);
    for r in 0..rows {
        w.dequantize_row(r, &mut got);
        dequantize(&blocks[r * per_row..(r + 1) * per_row], &mut want);
        assert_eq!(got, want, "{kind:?} row {r}");
        // The interleaved matmul (scalar) agrees exactly with the GGUF-layout dot product.
        let x = random_activations(1, cols, r as u64 + 1);
        let mut acts = vec![A::default(); per_row];
        quantize(&x, &mut acts);
        let plain = dot(&blocks[r * per_row..(r + 1) * per_row], &acts);
        assert_eq!(run(Isa::SCALAR, &w, &x, 1)[r], plain, "{kind:?} row {r}");
    }
}

#[test]
fn interleaved_rows_keep_their_gguf_values() {
    let f16_at = |b: &[u8], at: usize| f16::from_le_bytes([b[at], b[at + 1]]);
    check_interleaved(
        QuantType::Q5_0,
        &[0],
        |b| BlockQ5_0 { d: f16_at(b, 0), qh: b[2..6].try_into().unwrap(), qs: b[6..22].try_into().unwrap() },
        scalar::quantize_q8,
        scalar::dequantize_q5_0,
        scalar::dot_q5_0,
    );
    check_interleaved(
        QuantType::Q8_0,
        &[0],
        |b| BlockQ8_0 { d: f16_at(b, 0), qs: std::array::from_fn(|i| b[2 + i] as i8) },
        scalar::quantize_q8,
        scalar::dequantize_q8_0,
        scalar::dot_q8_0,
    );
    check_interleaved(
        QuantType::Q4K,
        &[0, 2],
        |b| BlockQ4K {
            d: f16_at(b, 0),
            dmin: f16_at(b, 2),
            scales: b[4..16].try_into().unwrap(),
            qs: b[16..144].try_into().unwrap(),
        },
        scalar::quantize_q8k,
        scalar::dequantize_q4k,
        scalar::dot_q4k,
    );
    check_interleaved(
        QuantType::Q6K,
        &[208],
        |b| BlockQ6K {
            ql: b[0..128].try_into().unwrap(),
            qh: b[128..192].try_into().unwrap(),
            scales: std::array::from_fn(|i| b[192 + i] as i8),
            d: f16_at(b, 208),
        },
        scalar::quantize_q8k,
        scalar::dequantize_q6k,
        scalar::dot_q6k,
    );
}

#[test]
fn matrices_reject_wrong_sizes() {
    assert!(QuantMatrix::new(QuantType::Q4K, 2, 100, &[0; 10]).is_err());
    assert!(QuantMatrix::new(QuantType::Q8_0, 2, 64, &[0; 10]).is_err());
    assert!(QuantMatrix::new(QuantType::Q8_0, 2, 64, &[0; 4 * 34]).is_ok());
}

#[test]
fn scalar_quantizers_round_trip() {
    let x = random_activations(1, QK_K, 12);
    let mut q8 = vec![ActQ8::default(); QK_K / QK];
    scalar::quantize_q8(&x, &mut q8);
    let mut q8k = vec![ActQ8K::default(); 1];
    scalar::quantize_q8k(&x, &mut q8k);
    for (i, &v) in x.iter().enumerate() {
        let b = &q8[i / QK];
        assert!((b.d * f32::from(b.qs[i % QK]) - v).abs() <= b.d * 0.5 + 1e-6);
        assert!((q8k[0].d * f32::from(q8k[0].qs[i]) - v).abs() <= q8k[0].d * 0.5 + 1e-6);
    }
    let sum: i16 = q8k[0].qs[..16].iter().map(|&q| i16::from(q)).sum();
    assert_eq!(q8k[0].bsums[0], sum);
}

#[test]
fn weights_requantized_to_q8_0_dequantize_closely() {
    let x = random_activations(1, 64, 77);
    let blocks = scalar::quantize_weights_q8_0(&x);
    let bytes: Vec<u8> =
        blocks.iter().flat_map(|b| b.d.to_le_bytes().into_iter().chain(b.qs.iter().map(|&q| q as u8))).collect();
    let w = QuantMatrix::new(QuantType::Q8_0, 1, 64, &bytes).unwrap();
    let mut back = vec![0.0; 64];
    w.dequantize_row(0, &mut back);
    for (a, b) in x.iter().zip(&back) {
        assert!((a - b).abs() < 3.0 / 127.0, "{a} vs {b}");
    }
}
