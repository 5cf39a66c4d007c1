//! Ponder's CPU kernels: quantized matmuls at llama.cpp speed, and the small ops around them.
//!
//! - [`formats`]: the GGUF block layouts (Q8_0, Q5_0, Q4_K, Q6_K) and 8-bit activation blocks;
//! - [`scalar`]: portable reference implementations;
//! - `avx2`: x86-64 AVX2+FMA versions, chosen at run time by [`Isa::detect`];
//! - [`matmul`]: quantized weight matrices and the batched, batch-invariant matmul;
//! - [`ops`]: RMS norm, RoPE, SwiGLU and vector helpers;
//! - [`attention`]: causal attention of a chunk of queries over a sequence's KV blocks.
//!
//! Room for NEON: a new [`Isa`] variant and a module beside `avx2`.

pub mod attention;
#[cfg(target_arch = "x86_64")]
mod avx2;
pub mod formats;
pub mod matmul;
pub mod ops;
pub mod scalar;

pub use formats::QuantType;
pub use matmul::{matmul, MatmulJob, QuantMatrix, QuantizedActivations};

/// The instruction set the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Portable code.
    Scalar,
    /// x86-64 with AVX2 and FMA.
    Avx2,
}

impl Isa {
    /// The best instruction set this CPU supports (`PONDER_KERNELS=scalar` forces the
    /// portable code, for comparisons).
    pub fn detect() -> Self {
        if std::env::var("PONDER_KERNELS").is_ok_and(|v| v == "scalar") {
            return Self::Scalar;
        }
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c") {
            return Self::Avx2;
        }
        Self::Scalar
    }
}
