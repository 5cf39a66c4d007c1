//! Ponder's CPU kernels: quantized matmuls at llama.cpp speed, and the small ops around them.
//!
//! - [`formats`]: the GGUF block layouts (Q8_0, Q5_0, Q4_K, Q6_K) and 8-bit activation blocks;
//! - [`scalar`]: portable reference implementations;
//! - `avx2`: x86-64 AVX2+FMA versions, chosen at run time by [`Isa::detect`];
//! - `avx512`: AVX-512 versions of attention's inner products, where the CPU has AVX-512F,
//!   and of the Q5_0 prefill matmul, where it has AVX-512 VNNI too (every other kernel keeps
//!   its AVX2 version there);
//! - [`matmul`]: quantized weight matrices and the batched, batch-invariant matmul;
//! - [`ops`]: RMS norm, RoPE, SwiGLU and vector helpers;
//! - [`attention`]: causal attention of a chunk of queries over a sequence's KV blocks.
//!
//! Room for NEON: a new [`Isa`] variant and a module beside `avx2`.

pub mod attention;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod formats;
pub mod matmul;
pub mod ops;
pub mod scalar;

pub use formats::QuantType;
pub use matmul::{matmul, MatmulJob, QuantMatrix, QuantizedActivations};

/// The instruction set the kernels use: a token that can only be made by [`Isa::detect`]
/// (or [`Isa::available`], or be [`Isa::SCALAR`]), so holding an AVX2 `Isa` proves the CPU
/// has AVX2, FMA and F16C, an AVX-512 one that it has AVX-512F as well, and an AVX-512 VNNI
/// one AVX-512BW and AVX-512 VNNI besides.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Isa(Level);

/// The levels, each a superset of the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Scalar,
    Avx2,
    Avx512,
    Avx512Vnni,
}

impl Isa {
    /// Portable code, on any CPU.
    pub const SCALAR: Self = Self(Level::Scalar);

    /// The best instruction set this CPU supports, or the one `PONDER_KERNELS` names if the
    /// CPU has it (`scalar` or `avx2`, for comparisons).
    pub fn detect() -> Self {
        let available = Self::available();
        let best = *available.last().expect("the portable code is always available");
        match std::env::var("PONDER_KERNELS") {
            Ok(wanted) => available.into_iter().find(|isa| isa.name() == wanted).unwrap_or(best),
            Err(_) => best,
        }
    }

    /// Every instruction set this CPU supports, the portable code first and the best last
    /// (tests run each of them).
    pub fn available() -> Vec<Self> {
        let mut levels = vec![Self::SCALAR];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c") {
            levels.push(Self(Level::Avx2));
            if is_x86_feature_detected!("avx512f") {
                levels.push(Self(Level::Avx512));
                if is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512vnni") {
                    levels.push(Self(Level::Avx512Vnni));
                }
            }
        }
        levels
    }

    /// Whether the SIMD kernels run (false for the portable code).
    pub fn is_simd(self) -> bool {
        self.0 != Level::Scalar
    }

    /// The instruction set's name: `scalar`, `avx2`, `avx512` or `avx512vnni`.
    pub fn name(self) -> &'static str {
        match self.0 {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
            Level::Avx512Vnni => "avx512vnni",
        }
    }

    /// Whether this is AVX2 or above, which only [`Isa::available`] makes after finding AVX2,
    /// FMA and F16C on this CPU: the condition for calling the `avx2` kernels.
    pub(crate) fn has_avx2(self) -> bool {
        self.0 >= Level::Avx2
    }

    /// Whether this is AVX-512, which only [`Isa::available`] makes after finding AVX-512F
    /// besides AVX2, FMA and F16C: the condition for calling the `avx512` kernels.
    pub(crate) fn has_avx512(self) -> bool {
        self.0 >= Level::Avx512
    }

    /// Whether this is AVX-512 VNNI, which only [`Isa::available`] makes after finding
    /// AVX-512F, AVX-512BW and AVX-512 VNNI besides AVX2, FMA and F16C: the condition for
    /// calling the `avx512` VNNI kernels.
    pub(crate) fn has_avx512_vnni(self) -> bool {
        self.0 >= Level::Avx512Vnni
    }
}

impl std::fmt::Debug for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_portable_isa_is_not_simd() {
        assert!(!Isa::SCALAR.is_simd());
        assert!(!Isa::SCALAR.has_avx2());
        assert_eq!(Isa::available()[0], Isa::SCALAR);
        assert_eq!(format!("{:?} {}", Isa::SCALAR, Isa::SCALAR), "scalar scalar");
    }
}
