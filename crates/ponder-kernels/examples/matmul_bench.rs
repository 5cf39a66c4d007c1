//! Throughput of one quantized matmul: `cargo run --release -p ponder-kernels --example matmul_bench`.
//! Prints GB/s of weights streamed and GOPS for the demo model's shapes at several batch sizes.

use std::time::Instant;

use ponder_kernels::formats::QuantType;
use ponder_kernels::{matmul, Isa, MatmulJob, QuantMatrix, QuantizedActivations};

fn matrix(kind: QuantType, rows: usize, cols: usize) -> QuantMatrix {
    let blocks = rows * cols / kind.block_elems();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut bytes: Vec<u8> = (0..blocks * kind.block_bytes())
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    // Keep f16 scales finite: zero their exponent's top bits.
    let scale_at = match kind {
        QuantType::Q6K => vec![208],
        QuantType::Q4K => vec![0, 2],
        _ => vec![0],
    };
    for b in 0..blocks {
        for &at in &scale_at {
            bytes[b * kind.block_bytes() + at + 1] &= 0x3b;
        }
    }
    QuantMatrix::new(kind, rows, cols, &bytes).unwrap()
}

fn main() {
    let isa = Isa::detect();
    let shapes = [
        ("ffn_up Q5_0", QuantType::Q5_0, 4864, 896),
        ("24×ffn_up Q5_0", QuantType::Q5_0, 24 * 4864, 896),
        ("24×down Q4_K", QuantType::Q4K, 24 * 896, 4864),
        ("attn_q Q5_0", QuantType::Q5_0, 896, 896),
        ("ffn_down Q4_K", QuantType::Q4K, 896, 4864),
        ("ffn_down Q6_K", QuantType::Q6K, 896, 4864),
        ("lm_head Q8_0", QuantType::Q8_0, 151_936, 896),
    ];
    println!("isa {isa:?}, threads {}", rayon::current_num_threads());
    // `MATMUL_BENCH_ONLY=Q5_0` runs the shapes whose name contains it; `MATMUL_BENCH_M=16`
    // one batch size.
    let only = std::env::var("MATMUL_BENCH_ONLY").unwrap_or_default();
    let batches: Vec<usize> = match std::env::var("MATMUL_BENCH_M") {
        Ok(m) => vec![m.parse().expect("MATMUL_BENCH_M is a number")],
        Err(_) => vec![1, 8, 16, 64],
    };
    for (name, kind, rows, cols) in shapes.into_iter().filter(|s| s.0.contains(&only)) {
        let w = matrix(kind, rows, cols);
        for &m in &batches {
            let x: Vec<f32> = (0..m * cols).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
            let mut out = vec![0.0; m * rows];
            let mut acts = QuantizedActivations::default();
            let reps = if rows > 100_000 { 5 } else { 50 };
            let mut times = Vec::new();
            for _ in 0..reps {
                let start = Instant::now();
                acts.quantize(isa, &x, m, cols, &[kind]);
                matmul(isa, &acts, &mut [MatmulJob { weights: &w, out: &mut out }]);
                times.push(start.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let t = times[times.len() / 2];
            println!(
                "{name:>14} m={m:>2}: {:8.3} ms (fastest {:8.3})  {:6.1} GB/s  {:6.1} GOPS",
                t * 1e3,
                times[0] * 1e3,
                w.size_in_bytes() as f64 / t / 1e9,
                2.0 * (m * rows * cols) as f64 / t / 1e9
            );
        }
    }
}
