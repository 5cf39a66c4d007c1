//! Block layouts of the GGML quantized weight types we compute on, and of the 8-bit
//! activation blocks they are multiplied with.
//!
//! Weight blocks are byte-for-byte the GGUF layouts, so a GGUF tensor's bytes are used as
//! they are. Activation blocks are our own (an `f32` scale instead of `f16`).

use half::f16;

/// Elements in a "small" block (Q8_0, Q5_0 and their activations).
pub const QK: usize = 32;
/// Elements in a k-quant super-block (Q4_K, Q6_K and their activations).
pub const QK_K: usize = 256;

/// Q8_0: 32 signed bytes and one scale. `x = d * q`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// Values.
    pub qs: [i8; QK],
}

/// Q5_0: 32 five-bit values, offset by 16. Element `j < 16` is the low nibble of `qs[j]`,
/// element `j + 16` the high nibble; bit `j` of `qh` is element `j`'s fifth bit.
/// `x = d * (q - 16)`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: f16,
    /// Fifth bits of the 32 elements.
    pub qh: [u8; 4],
    /// Low four bits, two elements per byte.
    pub qs: [u8; QK / 2],
}

/// Q4_K: 256 four-bit values in 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit min.
/// `x = d * scale_j * q - dmin * min_j`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ4K {
    /// Scale of the scales.
    pub d: f16,
    /// Scale of the mins.
    pub dmin: f16,
    /// The 8 scales and 8 mins, 6 bits each, packed.
    pub scales: [u8; 12],
    /// Values: 64-element groups, low nibbles then high nibbles of 32 bytes.
    pub qs: [u8; QK_K / 2],
}

/// Q6_K: 256 six-bit values offset by 32, in 16 groups of 16 with an 8-bit scale each.
/// `x = d * scale_g * (q - 32)`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ6K {
    /// Low four bits.
    pub ql: [u8; QK_K / 2],
    /// High two bits.
    pub qh: [u8; QK_K / 4],
    /// Group scales.
    pub scales: [i8; QK_K / 16],
    /// Scale of the scales.
    pub d: f16,
}

/// 32 activations quantized to bytes: `x ≈ d * q`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct ActQ8 {
    /// Scale.
    pub d: f32,
    /// Values.
    pub qs: [i8; QK],
}

/// 256 activations quantized to bytes, with the sums of each group of 16 values.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct ActQ8K {
    /// Scale.
    pub d: f32,
    /// Values.
    pub qs: [i8; QK_K],
    /// `bsums[g] = Σ qs[16g..16g + 16]`.
    pub bsums: [i16; QK_K / 16],
}

impl Default for ActQ8 {
    fn default() -> Self {
        Self { d: 0.0, qs: [0; QK] }
    }
}

impl Default for ActQ8K {
    fn default() -> Self {
        Self { d: 0.0, qs: [0; QK_K], bsums: [0; QK_K / 16] }
    }
}

/// The 6-bit scale and min of sub-block `j` of a Q4_K block.
pub fn q4k_scale_min(j: usize, scales: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        (
            (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4),
            (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4),
        )
    }
}

/// The weight types with kernels of our own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantType {
    /// 8-bit, blocks of 32.
    Q8_0,
    /// 5-bit, blocks of 32.
    Q5_0,
    /// 4-bit k-quant, super-blocks of 256.
    Q4K,
    /// 6-bit k-quant, super-blocks of 256.
    Q6K,
}

impl QuantType {
    /// Elements per block.
    pub fn block_elems(self) -> usize {
        match self {
            Self::Q8_0 | Self::Q5_0 => QK,
            Self::Q4K | Self::Q6K => QK_K,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::Q8_0 => std::mem::size_of::<BlockQ8_0>(),
            Self::Q5_0 => std::mem::size_of::<BlockQ5_0>(),
            Self::Q4K => std::mem::size_of::<BlockQ4K>(),
            Self::Q6K => std::mem::size_of::<BlockQ6K>(),
        }
    }

    /// Whether activations are quantized in super-blocks of 256 (else blocks of 32).
    pub fn uses_super_blocks(self) -> bool {
        matches!(self, Self::Q4K | Self::Q6K)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_gguf() {
        assert_eq!(std::mem::size_of::<BlockQ8_0>(), 34);
        assert_eq!(std::mem::size_of::<BlockQ5_0>(), 22);
        assert_eq!(std::mem::size_of::<BlockQ4K>(), 144);
        assert_eq!(std::mem::size_of::<BlockQ6K>(), 210);
        assert_eq!(QuantType::Q5_0.block_bytes(), 22);
        assert_eq!(QuantType::Q4K.block_elems(), 256);
    }

    #[test]
    fn q4k_scales_unpack() {
        // Scale j < 4 lives in the low 6 bits of byte j, its min in byte j + 4.
        let mut s = [0u8; 12];
        s[1] = 0b11_000101; // scale 1 = 5, top bits feed scale 5
        s[5] = 0b01_000111; // min 1 = 7, top bits feed min 5
        s[9] = 0b1010_0011; // scale 5 low = 3, min 5 low = 10
        assert_eq!(q4k_scale_min(1, &s), (5, 7));
        assert_eq!(q4k_scale_min(5, &s), (3 | (3 << 4), 10 | (1 << 4)));
    }
}
