//! The tiled attention kernel against a naive f64 reference and against the two-pass
//! attention it replaced, on random caches of many shapes; and its invariance: a query's
//! result is bit-for-bit the same in any tile, over f32, f16 and 8-bit caches.

use half::f16;
use ponder_kernels::attention::{attend_tile, AttentionScratch, KvElement, KvLayout, KvView, KvViewQ8, QueryTile};
use ponder_kernels::{ops, Isa};

/// xorshift64*: deterministic random numbers.
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
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A sequence of `len` tokens in a cache (of `E`) whose blocks are shuffled, with its queries.
struct Case<E> {
    layout: KvLayout,
    group: usize,
    keys: Vec<E>,
    values: Vec<E>,
    /// The sequence's blocks, in a shuffled order.
    blocks: Vec<u32>,
    /// Per token, `kv_heads × group × head_dim` queries.
    q: Vec<f32>,
    /// The unscattered keys and values, `len × kv_dim`, as the cache holds them, for the
    /// references.
    dense_keys: Vec<f32>,
    dense_values: Vec<f32>,
}

impl<E: KvElement> Case<E> {
    fn new(layout: KvLayout, group: usize, len: usize, seed: u64) -> Self {
        let mut rng = Rng(seed | 1);
        let kv_dim = layout.kv_heads * layout.head_dim;
        let used = len.div_ceil(layout.block_size);
        // Room for a few unused blocks, holding noise, between the sequence's own.
        let total = used + 3;
        let mut order: Vec<u32> = (0..total as u32).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let blocks = order[..used].to_vec();
        let mut keys: Vec<E> = (0..total * layout.block_floats()).map(|_| E::from_f32(rng.unit() * 50.0)).collect();
        let mut values = keys.clone();
        let spread = 1.0 + rng.unit().abs() * 3.0;
        let rounded = |x: f32| E::from_f32(x).to_f32();
        let dense_keys: Vec<f32> = (0..len * kv_dim).map(|_| rounded(rng.unit() * spread)).collect();
        let dense_values: Vec<f32> = (0..len * kv_dim).map(|_| rounded(rng.unit())).collect();
        for p in 0..len {
            let row = p * kv_dim..(p + 1) * kv_dim;
            let (block, offset) = (blocks[p / layout.block_size], p % layout.block_size);
            layout.store(
                &mut keys,
                &mut values,
                block,
                offset,
                &dense_keys[row.clone()],
                &dense_values[row],
                E::from_f32,
            );
        }
        let q = (0..len * kv_dim * group).map(|_| rng.unit() * spread).collect();
        Self { layout, group, keys, values, blocks, q, dense_keys, dense_values }
    }

    fn q_dim(&self) -> usize {
        self.layout.kv_heads * self.group * self.layout.head_dim
    }

    fn scale(&self) -> f32 {
        1.0 / (self.layout.head_dim as f32).sqrt()
    }

    /// The tiled kernel's output for tokens `first..first + tokens` and KV head `kv_head`.
    fn tiled(&self, isa: Isa, first: usize, tokens: usize, kv_head: usize) -> Vec<f32> {
        let tile = QueryTile {
            q: &self.q[first * self.q_dim()..],
            stride: self.q_dim(),
            tokens,
            first_position: first,
            kv_head,
            group: self.group,
            scale: self.scale(),
        };
        let kv = KvView { keys: &self.keys, values: &self.values, layout: self.layout };
        let mut out = vec![f32::NAN; tokens * self.group * self.layout.head_dim];
        attend_tile(isa, tile, kv, &self.blocks, &mut AttentionScratch::default(), &mut out);
        out
    }

    /// Query head `head` of token `t`, and the KV head it reads.
    fn query(&self, t: usize, head: usize) -> (&[f32], usize) {
        let hd = self.layout.head_dim;
        let start = t * self.q_dim() + head * hd;
        (&self.q[start..start + hd], head / self.group)
    }

    fn dense_key(&self, p: usize, kv_head: usize) -> &[f32] {
        let (kv_dim, hd) = (self.layout.kv_heads * self.layout.head_dim, self.layout.head_dim);
        &self.dense_keys[p * kv_dim + kv_head * hd..p * kv_dim + (kv_head + 1) * hd]
    }

    fn dense_value(&self, p: usize, kv_head: usize) -> &[f32] {
        let (kv_dim, hd) = (self.layout.kv_heads * self.layout.head_dim, self.layout.head_dim);
        &self.dense_values[p * kv_dim + kv_head * hd..p * kv_dim + (kv_head + 1) * hd]
    }

    /// Naive causal attention in f64 of query head `head` of token `t`.
    fn reference(&self, t: usize, head: usize) -> Vec<f64> {
        let (q, kv_head) = self.query(t, head);
        let scale = self.scale() as f64;
        let scores: Vec<f64> = (0..=t)
            .map(|p| q.iter().zip(self.dense_key(p, kv_head)).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() * scale)
            .collect();
        let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
        let total: f64 = weights.iter().sum();
        (0..self.layout.head_dim)
            .map(|d| (0..=t).map(|p| weights[p] / total * self.dense_value(p, kv_head)[d] as f64).sum())
            .collect()
    }

    /// The two-pass attention the tiled kernel replaced: every score, a softmax, then the
    /// weighted sum of values, in f32.
    fn two_pass(&self, isa: Isa, t: usize, head: usize) -> Vec<f32> {
        let (q, kv_head) = self.query(t, head);
        let mut scores: Vec<f32> =
            (0..=t).map(|p| ops::dot(isa, q, self.dense_key(p, kv_head)) * self.scale()).collect();
        ops::softmax(isa, &mut scores);
        let mut out = vec![0.0; self.layout.head_dim];
        for (p, &w) in scores.iter().enumerate() {
            ops::axpy(isa, w, self.dense_value(p, kv_head), &mut out);
        }
        out
    }
}

fn isas() -> Vec<Isa> {
    Isa::available()
}

/// Shapes: (KV heads, query heads per KV head, head size, block size, tokens).
const SHAPES: [(usize, usize, usize, usize, usize); 10] = [
    (1, 1, 8, 1, 5),
    (2, 7, 64, 16, 150),
    (1, 3, 12, 5, 37),
    (3, 2, 40, 3, 29),
    (2, 4, 128, 32, 70),
    (1, 8, 64, 16, 1),
    (2, 1, 72, 7, 64),
    (1, 6, 64, 24, 97),
    (4, 2, 16, 16, 48),
    (1, 5, 80, 128, 140),
];

#[test]
fn tiled_attention_matches_a_naive_f64_reference_and_the_two_pass_attention() {
    matches_the_references::<f32>();
    matches_the_references::<f16>();
}

fn matches_the_references<E: KvElement>() {
    for (seed, &(kv_heads, group, head_dim, block_size, len)) in SHAPES.iter().enumerate() {
        let case = Case::<E>::new(KvLayout { kv_heads, head_dim, block_size }, group, len, seed as u64 + 11);
        for isa in isas() {
            let mut worst_reference = 0.0f64;
            let mut worst_two_pass = 0.0f32;
            for kv_head in 0..kv_heads {
                let out = case.tiled(isa, 0, len, kv_head);
                for t in 0..len {
                    for g in 0..group {
                        let head = kv_head * group + g;
                        let got = &out[(t * group + g) * head_dim..(t * group + g + 1) * head_dim];
                        for (a, b) in got.iter().zip(case.reference(t, head)) {
                            worst_reference = worst_reference.max((*a as f64 - b).abs());
                        }
                        for (a, b) in got.iter().zip(case.two_pass(isa, t, head)) {
                            worst_two_pass = worst_two_pass.max((a - b).abs());
                        }
                    }
                }
            }
            let shape = format!(
                "{isa}, {}: {kv_heads} KV heads × {group}, head {head_dim}, blocks of {block_size}, {len} tokens",
                std::any::type_name::<E>()
            );
            assert!(worst_reference < 4e-6, "{shape}: {worst_reference} from the f64 reference");
            println!("{shape}: {worst_reference:.1e} from f64, {worst_two_pass:.1e} from two-pass");
            assert!(worst_two_pass < 1e-5, "{shape}: {worst_two_pass} from the two-pass attention");
        }
    }
}

#[test]
fn a_query_gives_the_same_bits_in_any_tile() {
    same_bits_in_any_tile::<f32>();
    same_bits_in_any_tile::<f16>();
}

fn same_bits_in_any_tile<E: KvElement>() {
    for (seed, &(kv_heads, group, head_dim, block_size, len)) in SHAPES.iter().enumerate() {
        let case = Case::<E>::new(KvLayout { kv_heads, head_dim, block_size }, group, len, seed as u64 + 101);
        let width = group * head_dim;
        let mut rng = Rng(seed as u64 + 5);
        for isa in isas() {
            for kv_head in 0..kv_heads {
                let whole = case.tiled(isa, 0, len, kv_head);
                // Token by token, as decode runs them.
                for t in 0..len {
                    assert_eq!(
                        case.tiled(isa, t, 1, kv_head),
                        whole[t * width..(t + 1) * width],
                        "{isa}: token {t} alone"
                    );
                }
                // Chunks cut at random places, as a prefill split into steps runs them.
                let mut first = 0;
                while first < len {
                    let tokens = 1 + rng.below(len - first);
                    let got = case.tiled(isa, first, tokens, kv_head);
                    assert_eq!(
                        got,
                        whole[first * width..(first + tokens) * width],
                        "{isa}: tile at {first} of {tokens}"
                    );
                    first += tokens;
                }
            }
        }
    }
}

#[test]
fn every_simd_level_gives_the_same_bits() {
    same_bits_on_every_simd_level::<f32>();
    same_bits_on_every_simd_level::<f16>();
}

fn same_bits_on_every_simd_level<E: KvElement>() {
    let simd: Vec<Isa> = Isa::available().into_iter().filter(|isa| isa.is_simd()).collect();
    for (seed, &(kv_heads, group, head_dim, block_size, len)) in SHAPES.iter().enumerate() {
        let case = Case::<E>::new(KvLayout { kv_heads, head_dim, block_size }, group, len, seed as u64 + 31);
        for kv_head in 0..kv_heads {
            let first = simd.first().map(|&isa| case.tiled(isa, 0, len, kv_head));
            for &isa in simd.iter().skip(1) {
                assert_eq!(Some(case.tiled(isa, 0, len, kv_head)), first, "{isa} against {}", simd[0]);
            }
        }
    }
}

#[test]
fn a_half_precision_cache_stays_close_to_a_single_precision_one() {
    let (kv_heads, group, head_dim, block_size, len) = (2, 7, 64, 16, 300);
    let layout = KvLayout { kv_heads, head_dim, block_size };
    let single = Case::<f32>::new(layout, group, len, 77);
    let half = Case::<f16>::new(layout, group, len, 77);
    let mut worst = 0.0f32;
    for kv_head in 0..kv_heads {
        let (a, b) = (single.tiled(Isa::detect(), 0, len, kv_head), half.tiled(Isa::detect(), 0, len, kv_head));
        worst = a.iter().zip(&b).fold(worst, |w, (x, y)| w.max((x - y).abs()));
    }
    println!("f16 cache: largest difference {worst:.1e} from the f32 cache");
    // Values within ±1 rounded to 11 significant bits move a weighted mean by under 2⁻¹¹;
    // the rounded keys move the weights a little too.
    assert!(worst < 2e-3, "f16 cache differs by {worst}");
}

#[test]
fn an_8_bit_cache_gives_the_same_bits_in_any_tile_and_on_every_level() {
    // Blocks of 16 (the usual, with 64- and 128-dimension heads) and of 8.
    for (seed, &(kv_heads, group, head_dim, block_size, len)) in
        [(2, 7, 64, 16, 300usize), (1, 4, 128, 16, 70), (2, 3, 64, 8, 41)].iter().enumerate()
    {
        let layout = KvLayout { kv_heads, head_dim, block_size };
        let scales = layout.q8_scales();
        let mut rng = Rng(seed as u64 * 7 + 3);
        let used = len.div_ceil(block_size);
        let mut blocks: Vec<u32> = (0..used as u32 + 2).collect();
        for i in (1..blocks.len()).rev() {
            blocks.swap(i, rng.below(i + 1));
        }
        let total = blocks.len();
        let mut element = || (rng.below(255) as i32 - 127) as i8;
        let keys: Vec<i8> = (0..total * layout.block_floats()).map(|_| element()).collect();
        let values: Vec<i8> = (0..total * layout.block_floats()).map(|_| element()).collect();
        let mut scale = || f16::from_f32(0.002 + rng.unit().abs() * 0.05);
        let key_scales: Vec<f16> = (0..total * scales.block_floats()).map(|_| scale()).collect();
        let value_scales: Vec<f16> = (0..total * scales.block_floats()).map(|_| scale()).collect();
        let kv =
            KvViewQ8 { keys: &keys, values: &values, key_scales: &key_scales, value_scales: &value_scales, layout };
        let q_dim = kv_heads * group * head_dim;
        let q: Vec<f32> = (0..len * q_dim).map(|_| rng.unit() * 2.0).collect();
        let tiled = |isa: Isa, first: usize, tokens: usize, kv_head: usize| {
            let tile = QueryTile {
                q: &q[first * q_dim..],
                stride: q_dim,
                tokens,
                first_position: first,
                kv_head,
                group,
                scale: 0.125,
            };
            let mut out = vec![f32::NAN; tokens * group * head_dim];
            attend_tile(isa, tile, kv, &blocks, &mut AttentionScratch::default(), &mut out);
            out
        };
        let width = group * head_dim;
        for kv_head in 0..kv_heads {
            let mut first_simd = None;
            for isa in isas() {
                let whole = tiled(isa, 0, len, kv_head);
                for t in 0..len {
                    let alone = tiled(isa, t, 1, kv_head);
                    assert_eq!(
                        alone,
                        whole[t * width..(t + 1) * width],
                        "{isa}: token {t} alone, blocks of {block_size}"
                    );
                }
                if isa.is_simd() {
                    let first = first_simd.get_or_insert_with(|| (isa, whole.clone()));
                    assert_eq!(whole, first.1, "{isa} against {}, blocks of {block_size}", first.0);
                }
            }
        }
    }
}
