//! Block layouts of the GGML quantized weight types we compute on, and of the 8-bit
//! activation blocks they are multiplied with.
//!
//! Weight blocks are the GGUF layouts, repacked at load ([`Interleaved`]): eight rows'
//! blocks interleaved so one SIMD register holds four elements of each of eight rows, and
//! each lane of an accumulator is one weight row (no horizontal sums).
//! Activation blocks are our own (an `f32` scale instead of `f16`).

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

/// Rows interleaved in one packed block ([`BlockQ5_0x8`], [`BlockQ8_0x8`], [`BlockQ4Kx8`], [`BlockQ6Kx8`]).
pub const GROUP_ROWS: usize = 8;

/// A GGUF block type that Ponder stores eight rows at a time, interleaved.
pub trait Interleaved: Copy {
    /// The same block of eight rows, interleaved.
    type Packed: Copy;
    /// An all-zero block, which pads a matrix's last group of rows.
    const ZERO: Self;
    /// Interleaves one block of eight rows.
    fn pack(rows: [&Self; GROUP_ROWS]) -> Self::Packed;
    /// Row `r`'s block, as GGUF stores it.
    fn unpack(packed: &Self::Packed, r: usize) -> Self;
}

/// The same block (32 elements) of eight Q8_0 rows, interleaved: element `4j + t` of row
/// `r` at `qs[32j + 4r + t]`, so register `j` holds elements `4j..4j + 4` of every row.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ8_0x8 {
    /// The eight rows' scales.
    pub d: [f16; GROUP_ROWS],
    /// Values, eight registers of 32 bytes.
    pub qs: [i8; 8 * QK],
}

impl Interleaved for BlockQ8_0 {
    type Packed = BlockQ8_0x8;
    const ZERO: Self = Self { d: f16::ZERO, qs: [0; QK] };

    fn pack(rows: [&Self; GROUP_ROWS]) -> BlockQ8_0x8 {
        let mut packed = BlockQ8_0x8 { d: rows.map(|b| b.d), qs: [0; 8 * QK] };
        interleave_pieces(rows.map(|b| &b.qs[..]), &mut packed.qs);
        packed
    }

    fn unpack(packed: &BlockQ8_0x8, r: usize) -> Self {
        let mut block = Self { d: packed.d[r], qs: [0; QK] };
        deinterleave_pieces(&packed.qs, r, &mut block.qs);
        block
    }
}

impl Interleaved for BlockQ5_0 {
    type Packed = BlockQ5_0x8;
    const ZERO: Self = Self { d: f16::ZERO, qh: [0; 4], qs: [0; QK / 2] };

    fn pack(rows: [&Self; GROUP_ROWS]) -> BlockQ5_0x8 {
        let mut packed = BlockQ5_0x8 { d: [f16::ZERO; GROUP_ROWS], qh: [0; 8], qs: [0; 128] };
        for (r, block) in rows.iter().enumerate() {
            packed.d[r] = block.d;
            let qh = u32::from_le_bytes(block.qh);
            for j in 0..8 {
                for t in 0..4 {
                    let bit = (qh >> (4 * j + t)) & 1;
                    packed.qh[j] |= bit << (8 * t + r);
                }
            }
        }
        interleave_pieces(rows.map(|b| &b.qs[..]), &mut packed.qs);
        packed
    }

    fn unpack(packed: &BlockQ5_0x8, r: usize) -> Self {
        let mut block = Self { d: packed.d[r], qh: [0; 4], qs: [0; QK / 2] };
        let mut qh = 0u32;
        for j in 0..8 {
            for t in 0..4 {
                qh |= ((packed.qh[j] >> (8 * t + r)) & 1) << (4 * j + t);
            }
        }
        block.qh = qh.to_le_bytes();
        deinterleave_pieces(&packed.qs, r, &mut block.qs);
        block
    }
}

/// The same block (32 elements) of eight Q5_0 rows, interleaved: Ponder's own layout, made
/// at load by [`Interleaved::pack`], the same size as the eight GGUF blocks.
///
/// Elements `4j..4j + 4` of every row form "register" `j` (0..8): four bytes per row, rows
/// side by side. Their low four bits are the low (`j < 4`) or high (`j ≥ 4`) nibbles of
/// `qs[32 (j % 4) .. 32 (j % 4) + 32]`, row `r` at bytes `4r..4r + 4`. Their fifth bits are
/// `qh[j]`, element `4j + t` of row `r` at bit `8t + r`, so one broadcast and one mask
/// test give every byte its own bit.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ5_0x8 {
    /// The eight rows' scales.
    pub d: [f16; GROUP_ROWS],
    /// Fifth bits, one word per register.
    pub qh: [u32; 8],
    /// Low four bits, two registers per 32 bytes.
    pub qs: [u8; 4 * 32],
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

/// Scale (or min) `2k + e` of row `r` sits at byte `16k + 2r + e` of an interleaved
/// k-quant block's scale array: one 16-byte load widened to 16-bit gives a register whose
/// 32-bit lane `r` holds row `r`'s pair of sub-block `2k` and `2k + 1`.
fn pair_index(sub_block: usize, row: usize) -> usize {
    16 * (sub_block / 2) + 2 * row + sub_block % 2
}

/// Copies four-element pieces of eight rows side by side: piece `u` of row `r` (its elements
/// `4u..4u + 4`) goes to `out[32u + 4r..32u + 4r + 4]`.
fn interleave_pieces<T: Copy>(rows: [&[T]; GROUP_ROWS], out: &mut [T]) {
    for (r, row) in rows.iter().enumerate() {
        for (u, piece) in row.chunks_exact(4).enumerate() {
            out[32 * u + 4 * r..32 * u + 4 * r + 4].copy_from_slice(piece);
        }
    }
}

/// Row `r`'s bytes back from [`interleave_pieces`].
fn deinterleave_pieces<T: Copy>(packed: &[T], r: usize, out: &mut [T]) {
    for (u, piece) in out.chunks_exact_mut(4).enumerate() {
        piece.copy_from_slice(&packed[32 * u + 4 * r..32 * u + 4 * r + 4]);
    }
}

/// The same super-block (256 elements) of eight Q4_K rows, interleaved, with the 6-bit
/// scales and mins unpacked to bytes (32 bytes more than the eight GGUF blocks).
///
/// `qs` holds the GGUF `qs` bytes four at a time, rows side by side: byte `4i + t` of
/// 32-byte chunk `c` of row `r` at `qs[256c + 32i + 4r + t]`. So register `(c, i)` masked
/// to its low nibbles holds elements `4i..4i + 4` of sub-block `2c` of every row, shifted
/// right by four those of sub-block `2c + 1`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ4Kx8 {
    /// The eight rows' scales of the scales.
    pub d: [f16; GROUP_ROWS],
    /// The eight rows' scales of the mins.
    pub dmin: [f16; GROUP_ROWS],
    /// Sub-block scales, in pairs (see `pair_index`).
    pub scales: [u8; 64],
    /// Sub-block mins, in pairs like the scales.
    pub mins: [u8; 64],
    /// Values, 32 registers of 32 bytes.
    pub qs: [u8; 1024],
}

impl Interleaved for BlockQ4K {
    type Packed = BlockQ4Kx8;
    const ZERO: Self = Self { d: f16::ZERO, dmin: f16::ZERO, scales: [0; 12], qs: [0; QK_K / 2] };

    fn pack(rows: [&Self; GROUP_ROWS]) -> BlockQ4Kx8 {
        let mut packed =
            BlockQ4Kx8 { d: [f16::ZERO; 8], dmin: [f16::ZERO; 8], scales: [0; 64], mins: [0; 64], qs: [0; 1024] };
        for (r, block) in rows.iter().enumerate() {
            packed.d[r] = block.d;
            packed.dmin[r] = block.dmin;
            for j in 0..8 {
                let (scale, min) = q4k_scale_min(j, &block.scales);
                packed.scales[pair_index(j, r)] = scale;
                packed.mins[pair_index(j, r)] = min;
            }
        }
        interleave_pieces(rows.map(|b| &b.qs[..]), &mut packed.qs);
        packed
    }

    fn unpack(packed: &BlockQ4Kx8, r: usize) -> Self {
        let mut block = Self { d: packed.d[r], dmin: packed.dmin[r], scales: [0; 12], qs: [0; QK_K / 2] };
        let scale = |j: usize| packed.scales[pair_index(j, r)];
        let min = |j: usize| packed.mins[pair_index(j, r)];
        // The inverse of `q4k_scale_min`.
        for j in 0..4 {
            block.scales[j] = (scale(j) & 63) | ((scale(j + 4) >> 4) << 6);
            block.scales[j + 4] = (min(j) & 63) | ((min(j + 4) >> 4) << 6);
            block.scales[j + 8] = (scale(j + 4) & 0x0F) | ((min(j + 4) & 0x0F) << 4);
        }
        deinterleave_pieces(&packed.qs, r, &mut block.qs);
        block
    }
}

/// The same super-block (256 elements) of eight Q6_K rows, interleaved: the same size as
/// the eight GGUF blocks.
///
/// `ql` and `qh` hold the GGUF bytes four at a time, rows side by side (byte `4u + t` of
/// row `r` at `32u + 4r + t`), so each 32-byte register carries the same elements of every
/// row and decodes with the GGUF layout's shifts and masks.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ6Kx8 {
    /// The eight rows' scales of the scales.
    pub d: [f16; GROUP_ROWS],
    /// Group scales, in pairs (see `pair_index`).
    pub scales: [i8; 128],
    /// Low four bits, 32 registers.
    pub ql: [u8; 1024],
    /// High two bits, 16 registers.
    pub qh: [u8; 512],
}

impl Interleaved for BlockQ6K {
    type Packed = BlockQ6Kx8;
    const ZERO: Self = Self { ql: [0; QK_K / 2], qh: [0; QK_K / 4], scales: [0; QK_K / 16], d: f16::ZERO };

    fn pack(rows: [&Self; GROUP_ROWS]) -> BlockQ6Kx8 {
        let mut packed = BlockQ6Kx8 { d: [f16::ZERO; 8], scales: [0; 128], ql: [0; 1024], qh: [0; 512] };
        for (r, block) in rows.iter().enumerate() {
            packed.d[r] = block.d;
            for (g, &scale) in block.scales.iter().enumerate() {
                packed.scales[pair_index(g, r)] = scale;
            }
        }
        interleave_pieces(rows.map(|b| &b.ql[..]), &mut packed.ql);
        interleave_pieces(rows.map(|b| &b.qh[..]), &mut packed.qh);
        packed
    }

    fn unpack(packed: &BlockQ6Kx8, r: usize) -> Self {
        let mut block = Self { d: packed.d[r], ..Self::ZERO };
        for (g, scale) in block.scales.iter_mut().enumerate() {
            *scale = packed.scales[pair_index(g, r)];
        }
        deinterleave_pieces(&packed.ql, r, &mut block.ql);
        deinterleave_pieces(&packed.qh, r, &mut block.qh);
        block
    }
}

/// 32 activations quantized to bytes: `x ≈ d * q`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct ActQ8 {
    /// Scale.
    pub d: f32,
    /// `-16 · Σ qs`: takes back out what Q5_0's weights, taken as unsigned bytes `q + 16`,
    /// add to a dot product with this block (negative, so the kernel adds a broadcast load).
    pub minus_offset16: i32,
    /// Values.
    pub qs: [i8; QK],
}

/// The same block of eight activation rows side by side, rows in the lanes: the layout of
/// the wide kernels, which broadcast four weight bytes against eight activation rows.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
pub struct ActQ8x8 {
    /// `qs[j]`: values `4j..4j + 4` of row 0, then of row 1, … of row 7.
    pub qs: [[i8; 32]; QK / 4],
    /// The rows' scales.
    pub d: [f32; GROUP_ROWS],
    /// The rows' [`ActQ8::minus_offset16`].
    pub minus_offset16: [i32; GROUP_ROWS],
}

impl Default for ActQ8x8 {
    fn default() -> Self {
        Self { qs: [[0; 32]; QK / 4], d: [0.0; GROUP_ROWS], minus_offset16: [0; GROUP_ROWS] }
    }
}

impl ActQ8x8 {
    /// Puts the same block of eight activation rows side by side.
    pub fn gather(rows: [&ActQ8; GROUP_ROWS]) -> Self {
        let mut packed = Self::default();
        for (r, row) in rows.iter().enumerate() {
            for (j, piece) in packed.qs.iter_mut().enumerate() {
                piece[4 * r..4 * r + 4].copy_from_slice(&row.qs[4 * j..4 * j + 4]);
            }
            packed.d[r] = row.d;
            packed.minus_offset16[r] = row.minus_offset16;
        }
        packed
    }
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
        Self { d: 0.0, minus_offset16: 0, qs: [0; QK] }
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
        ((scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4), (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4))
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

    /// Bytes per GGUF block (Q5_0 and Q8_0 keep the same total size when interleaved).
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
        assert_eq!(std::mem::size_of::<BlockQ5_0x8>(), 8 * 22);
        assert_eq!(std::mem::size_of::<BlockQ8_0x8>(), 8 * 34);
        assert_eq!(std::mem::size_of::<BlockQ6Kx8>(), 8 * 210);
        // Q4_K's scales and mins unpacked to bytes: 32 bytes more than eight GGUF blocks.
        assert_eq!(std::mem::size_of::<BlockQ4Kx8>(), 8 * 144 + 32);
        assert_eq!(QuantType::Q4K.block_elems(), 256);
    }

    #[test]
    fn interleaved_blocks_pack_and_unpack_every_bit() {
        let mut state = 0x1234_5678_9abc_def1u64;
        let mut byte = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        };
        let rows: Vec<BlockQ5_0> = (0..8)
            .map(|r| BlockQ5_0 {
                d: f16::from_f32(r as f32 + 0.5),
                qh: std::array::from_fn(|_| byte()),
                qs: std::array::from_fn(|_| byte()),
            })
            .collect();
        let packed = BlockQ5_0::pack(std::array::from_fn(|r| &rows[r]));
        for (r, row) in rows.iter().enumerate() {
            let back = BlockQ5_0::unpack(&packed, r);
            assert_eq!((back.d, back.qh, back.qs), (row.d, row.qh, row.qs), "row {r}");
        }
        let q8: Vec<BlockQ8_0> = rows
            .iter()
            .map(|b| BlockQ8_0 { d: b.d, qs: std::array::from_fn(|i| (b.qs[i % 16] ^ b.qh[i % 4]) as i8) })
            .collect();
        let packed8 = BlockQ8_0::pack(std::array::from_fn(|r| &q8[r]));
        for (r, row) in q8.iter().enumerate() {
            let back = BlockQ8_0::unpack(&packed8, r);
            assert_eq!((back.d, back.qs), (row.d, row.qs), "Q8_0 row {r}");
        }
        assert_eq!(packed8.qs[32 * 3 + 4 * 5 + 1], q8[5].qs[4 * 3 + 1]);
        // Element 4j + t of row r: fifth bit at bit 8t + r of qh[j].
        let element = 4 * 5 + 2;
        let fifth = (u32::from_le_bytes(rows[3].qh) >> element) & 1;
        assert_eq!((packed.qh[5] >> (8 * 2 + 3)) & 1, fifth);
    }

    #[test]
    fn interleaved_k_quants_pack_and_unpack_every_bit() {
        let mut state = 0x0fed_cba9_8765_4321u64;
        let mut byte = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        };
        let q4: Vec<BlockQ4K> = (0..8)
            .map(|r| BlockQ4K {
                d: f16::from_f32(r as f32 + 0.5),
                dmin: f16::from_f32(r as f32 - 3.25),
                scales: std::array::from_fn(|_| byte()),
                qs: std::array::from_fn(|_| byte()),
            })
            .collect();
        let packed = BlockQ4K::pack(std::array::from_fn(|r| &q4[r]));
        for (r, row) in q4.iter().enumerate() {
            let back = BlockQ4K::unpack(&packed, r);
            assert_eq!(
                (back.d, back.dmin, back.scales, back.qs),
                (row.d, row.dmin, row.scales, row.qs),
                "Q4_K row {r}"
            );
            for j in 0..8 {
                let (scale, min) = q4k_scale_min(j, &row.scales);
                assert_eq!((packed.scales[pair_index(j, r)], packed.mins[pair_index(j, r)]), (scale, min));
            }
        }
        // Byte 4i + t of chunk c of row r at 256c + 32i + 4r + t.
        assert_eq!(packed.qs[256 * 2 + 32 * 5 + 4 * 3 + 1], q4[3].qs[32 * 2 + 4 * 5 + 1]);
        let q6: Vec<BlockQ6K> = (0..8)
            .map(|r| BlockQ6K {
                ql: std::array::from_fn(|_| byte()),
                qh: std::array::from_fn(|_| byte()),
                scales: std::array::from_fn(|_| byte() as i8),
                d: f16::from_f32(r as f32 * 0.25),
            })
            .collect();
        let packed6 = BlockQ6K::pack(std::array::from_fn(|r| &q6[r]));
        for (r, row) in q6.iter().enumerate() {
            let back = BlockQ6K::unpack(&packed6, r);
            assert_eq!((back.d, back.ql, back.qh, back.scales), (row.d, row.ql, row.qh, row.scales), "Q6_K row {r}");
        }
        assert_eq!(packed6.qh[32 * 9 + 4 * 6 + 2], q6[6].qh[4 * 9 + 2]);
        assert_eq!(packed6.scales[16 * 5 + 2 * 7 + 1], q6[7].scales[11]);
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
