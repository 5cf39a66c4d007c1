//! Throughput of one attention tile over a long cache, one thread:
//! `cargo run --release -p ponder-kernels --example attention_bench [DEPTH...]`.
//! The demo model's shape (2 KV heads, 7 query heads each, 64 dimensions, 16-token blocks,
//! an f16 cache, or the 8-bit one with `KV_CACHE=q8_0`); a tile of 54 tokens (378 query
//! rows, as the CPU model cuts prefill; another with `TILE_TOKENS=N`) at the end of each
//! depth. Prints the median time per tile and the GFLOP/s of its inner products (scores and
//! value sums, 2 FLOPs a multiply-add), for every SIMD level this CPU runs (or only the one
//! `PONDER_KERNELS` picks, when set).

use std::time::Instant;

use half::f16;
use ponder_kernels::attention::{
    attend_tile, quantize_q8, AttentionScratch, KvBlocks, KvLayout, KvView, KvViewQ8, QueryTile, Q8_GROUP,
};
use ponder_kernels::Isa;

const KV_HEADS: usize = 2;
const GROUP: usize = 7;
const HEAD_DIM: usize = 64;
const BLOCK: usize = 16;
/// Tokens a tile unless `TILE_TOKENS` says otherwise: the CPU model's 378 rows.
const TILE_TOKENS: usize = 54;

/// Pseudo-random values in [-1, 1).
fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn main() {
    let depths: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("a depth")).collect();
    let depths = if depths.is_empty() { vec![1024, 8192, 32768] } else { depths };
    let tile_tokens = std::env::var("TILE_TOKENS").map_or(TILE_TOKENS, |t| t.parse().expect("TILE_TOKENS: a number"));
    let layout = KvLayout { kv_heads: KV_HEADS, head_dim: HEAD_DIM, block_size: BLOCK };
    for depth in depths {
        let blocks = depth.div_ceil(BLOCK);
        let floats = blocks * layout.block_floats();
        let (keys, values) = (noise(floats, 1), noise(floats, 2));
        match std::env::var("KV_CACHE").as_deref() {
            Ok("q8_0") => {
                let quantized = |x: &[f32]| {
                    let (mut q, mut scales) = (vec![0i8; x.len()], vec![f16::ZERO; x.len() / Q8_GROUP]);
                    quantize_q8(x, &mut q, &mut scales);
                    (q, scales)
                };
                let ((k, key_scales), (v, value_scales)) = (quantized(&keys), quantized(&values));
                // The scales' order does not matter to the speed: any layout's count is the same.
                let kv =
                    KvViewQ8 { keys: &k, values: &v, key_scales: &key_scales, value_scales: &value_scales, layout };
                time_tiles(kv, depth, tile_tokens);
            }
            Ok("f16") | Err(_) => {
                let (keys, values): (Vec<f16>, Vec<f16>) = (
                    keys.iter().copied().map(f16::from_f32).collect(),
                    values.iter().copied().map(f16::from_f32).collect(),
                );
                time_tiles(KvView { keys: &keys, values: &values, layout }, depth, tile_tokens);
            }
            Ok(other) => panic!("KV_CACHE: f16 or q8_0, not {other}"),
        }
    }
}

/// Times a tile of `tile_tokens` at the end of `depth` tokens of `kv`, and prints it.
fn time_tiles<K: KvBlocks>(kv: K, depth: usize, tile_tokens: usize) {
    let blocks = depth.div_ceil(BLOCK);
    let table: Vec<u32> = (0..blocks as u32).collect();
    let q_dim = KV_HEADS * GROUP * HEAD_DIM;
    let q = noise(tile_tokens * q_dim, 3);
    let first_position = depth - tile_tokens;
    let tile =
        QueryTile { q: &q, stride: q_dim, tokens: tile_tokens, first_position, kv_head: 1, group: GROUP, scale: 0.125 };
    let mut out = vec![0.0f32; tile_tokens * GROUP * HEAD_DIM];
    let keys_seen: usize = (0..tile_tokens).map(|t| first_position + t + 1).sum();
    let flops = (2 * 2 * GROUP * HEAD_DIM * keys_seen) as f64;
    // Every level, or with PONDER_KERNELS set only the one it picks.
    let levels = if std::env::var_os("PONDER_KERNELS").is_some() { vec![Isa::detect()] } else { Isa::available() };
    for isa in levels {
        let mut scratch = AttentionScratch::default();
        let repeats = (200_000_000 / (GROUP * HEAD_DIM * depth * tile_tokens)).clamp(5, 2000);
        let mut times: Vec<f64> = (0..repeats)
            .map(|_| {
                let started = Instant::now();
                attend_tile(isa, tile, kv, &table, &mut scratch, &mut out);
                started.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "depth {depth:>6} {:>7}: {:>8.3} ms a tile, {:>6.1} GFLOP/s",
            isa.name(),
            median * 1e3,
            flops / median / 1e9
        );
    }
}
