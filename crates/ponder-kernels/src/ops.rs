//! The small per-token operations of a decoder layer, on plain `f32` slices.

use rayon::prelude::*;

use crate::{avx2, Isa};

/// `out[i] = x[i] / rms(x) * weight[i]` for one row.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let mean_square = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let scale = 1.0 / (mean_square + eps).sqrt();
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * w;
    }
}

/// `gate[i] = silu(gate[i]) * up[i]`, in pieces across the thread pool.
pub fn silu_mul(isa: Isa, gate: &mut [f32], up: &[f32]) {
    const PIECE: usize = 2048;
    assert_eq!(gate.len(), up.len(), "silu_mul operands differ in length");
    gate.par_chunks_mut(PIECE).zip(up.par_chunks(PIECE)).for_each(|(gate, up)| {
        if isa.has_avx2() {
            // SAFETY: an AVX2 `Isa` is made only by `Isa::available`, after finding AVX2, FMA and F16C,
            // the target features of the `avx2` kernels.
            unsafe { avx2::silu_mul(gate, up) }
        } else {
            for (g, &u) in gate.iter_mut().zip(up) {
                *g = *g / (1.0 + (-*g).exp()) * u;
            }
        }
    });
}

/// `x ← softmax(x)`: `e^(x_i - max) / Σ e^(x_j - max)`.
pub fn softmax(isa: Isa, x: &mut [f32]) {
    if isa.has_avx2() {
        // SAFETY: an AVX2 `Isa` is made only by `Isa::available`, after finding AVX2, FMA and F16C,
        // the target features of the `avx2` kernels.
        return unsafe { avx2::softmax(x) };
    }
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// `x[i] += y[i]`.
pub fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Rotates the heads of one token (`heads × head_dim` values) by the angles whose cosines
/// and sines are given (`head_dim / 2` each). `interleaved` pairs dimension `2i` with
/// `2i + 1`; otherwise `i` pairs with `i + head_dim / 2`.
pub fn rope(x: &mut [f32], head_dim: usize, cos: &[f32], sin: &[f32], interleaved: bool) {
    let half = head_dim / 2;
    for head in x.chunks_exact_mut(head_dim) {
        for i in 0..half {
            let (a, b) = if interleaved { (2 * i, 2 * i + 1) } else { (i, i + half) };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * cos[i] - x1 * sin[i];
            head[b] = x0 * sin[i] + x1 * cos[i];
        }
    }
}

/// Dot product of equal-length slices. Panics if their lengths differ.
#[inline]
pub fn dot(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot product of slices of different lengths");
    if isa.has_avx2() {
        // SAFETY: an AVX2 `Isa` is made only by `Isa::available`, after finding AVX2, FMA and F16C,
        // the target features of the `avx2` kernels.
        return unsafe { avx2::dot_f32(a, b) };
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `out += w * v`. Panics if the lengths differ.
#[inline]
pub fn axpy(isa: Isa, w: f32, v: &[f32], out: &mut [f32]) {
    assert_eq!(v.len(), out.len(), "axpy of slices of different lengths");
    if isa.has_avx2() {
        // SAFETY: an AVX2 `Isa` is made only by `Isa::available`, after finding AVX2, FMA and F16C,
        // the target features of the `avx2` kernels.
        return unsafe { avx2::axpy(w, v, out) };
    }
    for (o, &x) in out.iter_mut().zip(v) {
        *o += w * x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_normalises() {
        let mut out = [0.0; 4];
        rms_norm(&[2.0, -2.0, 2.0, -2.0], &[1.0, 2.0, 1.0, 1.0], 0.0, &mut out);
        assert_eq!(out, [1.0, -2.0, 1.0, -1.0]);
    }

    #[test]
    fn rope_rotates_pairs() {
        let (c, s) = (0.0f32, 1.0f32); // 90 degrees
        let mut halves = [1.0, 2.0, 3.0, 4.0];
        rope(&mut halves, 4, &[c, c], &[s, s], false);
        assert_eq!(halves, [-3.0, -4.0, 1.0, 2.0]);
        let mut pairs = [1.0, 2.0, 3.0, 4.0];
        rope(&mut pairs, 4, &[c, c], &[s, s], true);
        assert_eq!(pairs, [-2.0, 1.0, -4.0, 3.0]);
    }

    #[test]
    fn silu_mul_and_add() {
        for isa in [Isa::SCALAR, Isa::detect()] {
            let mut g = [0.0, 1.0];
            silu_mul(isa, &mut g, &[5.0, 2.0]);
            assert_eq!(g[0], 0.0);
            assert!((g[1] - 2.0 * 0.731_058_6).abs() < 1e-6);
        }
        let mut x = [1.0, 2.0];
        add_assign(&mut x, &[0.5, 0.5]);
        assert_eq!(x, [1.5, 2.5]);
    }

    #[test]
    fn simd_silu_matches_libm() {
        if !Isa::detect().has_avx2() {
            return;
        }
        // Every 1/64 from -100 to 100 (the exp's whole clamped range and beyond), 12,801
        // values: not a multiple of 8, so the padded tail runs too.
        let g: Vec<f32> = (-6400..=6400).map(|i| i as f32 / 64.0).collect();
        let u: Vec<f32> = (0..g.len()).map(|i| 1.0 + (i % 7) as f32 * 0.25).collect();
        let (mut simd, mut libm) = (g.clone(), g.clone());
        silu_mul(Isa::detect(), &mut simd, &u);
        silu_mul(Isa::SCALAR, &mut libm, &u);
        for (i, (&s, &l)) in simd.iter().zip(&libm).enumerate() {
            // Below g = -87.3 the clamped exp leaves a tiny value where libm gives -0.
            let tolerance = 4.0 * f32::EPSILON * l.abs() + 1e-30;
            assert!((s - l).abs() <= tolerance, "silu({}) * {}: {s} vs {l}", g[i], u[i]);
        }
        // An element's result does not depend on where it lies (tail or not).
        let mut one = [g[12_800]];
        silu_mul(Isa::detect(), &mut one, &u[12_800..]);
        assert_eq!(one[0].to_bits(), simd[12_800].to_bits());
    }

    #[test]
    fn simd_softmax_matches_scalar() {
        if !Isa::detect().has_avx2() {
            return;
        }
        for len in [1, 7, 8, 9, 150, 517] {
            let x: Vec<f32> = (0..len).map(|i| ((i * 37) % 101) as f32 * 0.3 - 12.0).collect();
            let (mut simd, mut scalar) = (x.clone(), x.clone());
            softmax(Isa::detect(), &mut simd);
            softmax(Isa::SCALAR, &mut scalar);
            for (s, l) in simd.iter().zip(&scalar) {
                assert!((s - l).abs() <= 1e-6 * l.max(1e-3), "len {len}: {s} vs {l}");
            }
            assert!((simd.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    /// `op` applied to `x` in all eight lanes; the first lane's result.
    ///
    /// # Safety
    /// The CPU must have the target features `op` is compiled for (AVX2 and FMA here).
    unsafe fn on_every_lane(op: unsafe fn(std::arch::x86_64::__m256) -> std::arch::x86_64::__m256, x: f32) -> f32 {
        let mut out = [0.0f32; 8];
        // SAFETY: the caller vouches for `op`'s features; `out` holds the eight floats stored.
        unsafe { std::arch::x86_64::_mm256_storeu_ps(out.as_mut_ptr(), op(std::arch::x86_64::_mm256_set1_ps(x))) };
        out[0]
    }

    #[test]
    fn simd_exp_is_accurate() {
        if !Isa::detect().has_avx2() {
            return;
        }
        for i in -8730..=8830 {
            let x = i as f32 / 100.0;
            // SAFETY: AVX2 and FMA were detected.
            let got = unsafe { on_every_lane(avx2::exp_ps, x) };
            let want = x.exp();
            assert!((got - want).abs() <= 2.0 * f32::EPSILON * want, "exp({x}): {got} vs {want}");
        }
    }

    #[test]
    fn simd_exp2_is_within_an_ulp_over_attention_s_range() {
        if !Isa::detect().has_avx2() {
            return;
        }
        // SAFETY: AVX2 and FMA were detected.
        let exp2 = |x: f32| unsafe { on_every_lane(avx2::exp2_ps, x) };
        let mut worst = 0.0f64;
        for i in 0..=1_260_000 {
            let x = -(i as f32) / 10_000.0;
            let want = (x as f64).exp2();
            let ulp = {
                let w = want as f32;
                (f32::from_bits(w.to_bits() + 1) - w) as f64
            };
            worst = worst.max((exp2(x) as f64 - want).abs() / ulp);
        }
        assert!(worst <= 1.0, "exp2: {worst} ulp");
        // Whole powers exactly; a masked score (-inf), anything below -126 and NaN at the clamp.
        for n in 0..=126 {
            assert_eq!(exp2(-(n as f32)), (-(n as f32)).exp2(), "2^-{n}");
        }
        for x in [f32::NEG_INFINITY, -126.0, -300.0, f32::NAN] {
            assert_eq!(exp2(x), f32::MIN_POSITIVE, "2^{x}");
        }
    }

    #[test]
    fn simd_dot_and_axpy_match_scalar() {
        if !Isa::detect().has_avx2() {
            return;
        }
        let a: Vec<f32> = (0..67).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..67).map(|i| (i as f32 * 0.11).cos()).collect();
        assert!((dot(Isa::detect(), &a, &b) - dot(Isa::SCALAR, &a, &b)).abs() < 1e-4);
        let mut x = b.clone();
        let mut y = b.clone();
        axpy(Isa::detect(), 0.5, &a, &mut x);
        axpy(Isa::SCALAR, 0.5, &a, &mut y);
        assert_eq!(x, y, "FMA of one product is exact either way");
    }

    #[test]
    fn vector_helpers_refuse_slices_of_different_lengths() {
        // Every ISA panics rather than read past the shorter slice.
        for isa in [Isa::SCALAR, Isa::detect()] {
            let short = [1.0; 3];
            let long = [1.0; 17];
            let panics = |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
            assert!(panics(&|| {
                dot(isa, &long, &short);
            }));
            assert!(panics(&|| {
                dot(isa, &short, &long);
            }));
            assert!(panics(&|| axpy(isa, 1.0, &short, &mut [0.0; 17])));
            assert!(panics(&|| axpy(isa, 1.0, &long, &mut [0.0; 3])));
            assert!(panics(&|| silu_mul(isa, &mut [0.0; 17], &short)));
        }
    }
}
