//! The AVX-512 VNNI matmul kernel for Q5_0 weights (most of the demo model's matrices):
//! `vpdpbusd` multiplies 64 weight and activation bytes and adds them into sixteen 32-bit
//! sums in one instruction, where the AVX2 kernel needs three (`maddubs`, an add, a
//! `madd`) for 32: `matmul_bench`'s Q5_0 matrices at 64 rows run 1.5× as fast (the weights'
//! decoding and the float steps are the same work as before).
//!
//! Safety, as in `avx2`: a safe function compiled with AVX-512F, AVX-512BW and AVX-512 VNNI
//! (and the AVX2 features), touching memory only through references; calling it is `unsafe`,
//! and sound exactly when an AVX-512 VNNI [`crate::Isa`] proves the features.

use std::arch::x86_64::*;

use super::store16;
use crate::avx2::{lanes_i32, load256, load_f16x8, load_ps, prefetch_ahead, store_ps, Q5_0Decoder, WIDE_GROUPS};
use crate::formats::{ActQ8x8, BlockQ5_0x8, GROUP_ROWS};

/// Two 256-bit integer registers as one: `low` in lanes 0–7, `high` in 8–15.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
fn join(low: __m256i, high: __m256i) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(low), high)
}

/// Two 256-bit float registers as one: `low` in lanes 0–7, `high` in 8–15.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
fn join_ps(low: __m256, high: __m256) -> __m512 {
    _mm512_castsi512_ps(join(_mm256_castps_si256(low), _mm256_castps_si256(high)))
}

/// AVX-512 VNNI version of [`crate::avx2::rows_q5_0x8_wide`], with the same bits: each
/// register holds both groups' eight activation rows (sixteen lanes), every (weight row,
/// activation row) pair gets the same exact integer sum of a block, and then the same float
/// steps in the same order (the offset added, the sum converted, multiplied by the product
/// of the two scales and added to the running sum in one rounding).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
pub fn rows_q5_0x8_wide(
    w: &[BlockQ5_0x8],
    x: [&[ActQ8x8]; WIDE_GROUPS],
    out: &mut [[f32; 8]; GROUP_ROWS * WIDE_GROUPS],
) {
    const { assert!(WIDE_GROUPS == 2, "two groups of eight rows fill the sixteen lanes") };
    let decoder = Q5_0Decoder::new();
    let mut sums = [_mm512_setzero_ps(); GROUP_ROWS];
    for (b, wb) in w.iter().enumerate() {
        prefetch_ahead(wb);
        // `decoded[j][r]`: weight row `r`'s four bytes of register `j`.
        let mut decoded = [[0i32; GROUP_ROWS]; 8];
        for (lanes, register) in decoded.iter_mut().zip(decoder.decode(wb)) {
            *lanes = lanes_i32(register);
        }
        let mut scales = [0f32; GROUP_ROWS];
        store_ps(&mut scales, load_f16x8(&wb.d));
        // The block's activations, both groups side by side: bytes, scales, offsets.
        let (low, high): (&ActQ8x8, &ActQ8x8) = (&x[0][b], &x[1][b]);
        let acts: [__m512i; 8] = [0, 1, 2, 3, 4, 5, 6, 7].map(|j| join(load256(&low.qs[j]), load256(&high.qs[j])));
        let act_scales = join_ps(load_ps(&low.d), load_ps(&high.d));
        let offsets = join(load256(&low.minus_offset16), load256(&high.minus_offset16));
        for r in 0..GROUP_ROWS {
            // Kept a run-time value, so each row's weight bytes are broadcast from memory (a
            // load) rather than shuffled out of registers (unrolled, the shuffles crowd
            // the port the dot products need).
            let r = std::hint::black_box(r) % GROUP_ROWS;
            let acc = &mut sums[r];
            // Two chains of exact integer sums, so their order does not matter.
            let (mut even, mut odd) = (_mm512_setzero_si512(), _mm512_setzero_si512());
            for j in (0..8).step_by(2) {
                even = _mm512_dpbusd_epi32(even, _mm512_set1_epi32(decoded[j][r]), acts[j]);
                odd = _mm512_dpbusd_epi32(odd, _mm512_set1_epi32(decoded[j + 1][r]), acts[j + 1]);
            }
            let signed = _mm512_add_epi32(_mm512_add_epi32(even, odd), offsets);
            let scale = _mm512_mul_ps(_mm512_set1_ps(scales[r]), act_scales);
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(signed), scale, *acc);
        }
    }
    for (r, row_sums) in sums.iter().enumerate() {
        let mut lanes = [0f32; 16];
        store16(&mut lanes, *row_sums);
        for (i, &v) in lanes.iter().enumerate() {
            out[i][r] = v;
        }
    }
}
