//! Quantizing a dense checkpoint while it loads (`--quantize`; mistral.rs calls it ISQ): each
//! weight matrix, as it is read, becomes the GGUF block type the scheme gives it, quantized
//! by candle's ports of ggml's reference quantizers, rows in parallel, then handed to the
//! kernels like a GGUF file's blocks. Only one tensor is ever held in f32.
//!
//! `q4_k_m` is llama.cpp's recipe (`llama_tensor_get_type`, no importance matrix): Q4_K
//! everywhere, Q6_K for the output projection (and for a tied embedding, which is the output
//! projection too) and for `attn_v` and `ffn_down` in the layers llama.cpp gives more bits;
//! a K type whose blocks of 256 do not fit a row falls back as llama.cpp's does (Q4_K to Q5_0,
//! Q6_K to Q8_0). So a Ponder-quantized model has, tensor by tensor, the types of a
//! llama.cpp Q4_K_M of the same checkpoint.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use crate::weights::{LayerWeight, WeightName};
use crate::Result;

/// How `--quantize` turns a dense checkpoint's matrices into blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantScheme {
    /// 8 bits and an f16 scale per 32 weights.
    Q8_0,
    /// 5 bits and an f16 scale per 32 weights.
    Q5_0,
    /// llama.cpp's 4-bit k-quant (blocks of 256 with 6-bit sub-scales).
    Q4K,
    /// llama.cpp's 6-bit k-quant.
    Q6K,
    /// llama.cpp's Q4_K_M mix.
    Q4KM,
}

impl QuantScheme {
    /// The names `--quantize` takes.
    pub const NAMES: &'static str = "q8_0, q5_0, q4_k, q6_k, q4_k_m";

    /// The scheme's name, as `--quantize` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Q8_0 => "q8_0",
            Self::Q5_0 => "q5_0",
            Self::Q4K => "q4_k",
            Self::Q6K => "q6_k",
            Self::Q4KM => "q4_k_m",
        }
    }

    /// The block type of matrix `name`, whose rows hold `cols` weights, in a model of
    /// `layers` layers whose output projection is the embedding when `tied`; `None` when
    /// no type of the scheme (nor its fallback) fits the rows.
    pub fn tensor_type(self, name: WeightName, cols: usize, layers: usize, tied: bool) -> Option<GgmlDType> {
        let wanted = match self {
            Self::Q8_0 => GgmlDType::Q8_0,
            Self::Q5_0 => GgmlDType::Q5_0,
            Self::Q4K => GgmlDType::Q4K,
            Self::Q6K => GgmlDType::Q6K,
            Self::Q4KM => q4_k_m_type(name, layers, tied),
        };
        fitting(wanted, cols)
    }
}

impl std::fmt::Display for QuantScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for QuantScheme {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "q8_0" => Ok(Self::Q8_0),
            "q5_0" => Ok(Self::Q5_0),
            "q4_k" => Ok(Self::Q4K),
            "q6_k" => Ok(Self::Q6K),
            "q4_k_m" => Ok(Self::Q4KM),
            _ => Err(format!("unknown quantization scheme `{s}` (expected {})", Self::NAMES)),
        }
    }
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the counted tensors, and every
/// third between.
fn more_bits(index: usize, count: usize) -> bool {
    index < count / 8 || index >= 7 * count / 8 || (index as isize - (count / 8) as isize) % 3 == 2
}

/// Where layer `layer`'s tensor comes in llama.cpp's count: llama.cpp counts `attn_v` and
/// `ffn_down` tensors in the order of the GGUF file it quantizes, and `convert_hf_to_gguf`
/// writes a checkpoint's tensors sorted by name, so layers come as their numbers sort as
/// text (0, 1, 10, 11, …, 19, 2, 20, …). The demo model's types follow this order.
fn file_order_index(layer: usize, layers: usize) -> usize {
    let name = layer.to_string();
    (0..layers).filter(|other| other.to_string() < name).count()
}

/// The type Q4_K_M gives a matrix before the fallback for narrow rows.
fn q4_k_m_type(name: WeightName, layers: usize, tied: bool) -> GgmlDType {
    match name {
        WeightName::Output => GgmlDType::Q6K,
        WeightName::Embedding if tied => GgmlDType::Q6K,
        WeightName::Layer(layer, LayerWeight::V | LayerWeight::Down)
            if more_bits(file_order_index(layer, layers), layers) =>
        {
            GgmlDType::Q6K
        }
        _ => GgmlDType::Q4K,
    }
}

/// `wanted`, or llama.cpp's fallback when its blocks do not divide a row of `cols`.
fn fitting(wanted: GgmlDType, cols: usize) -> Option<GgmlDType> {
    let chosen = if cols.is_multiple_of(wanted.block_size()) {
        wanted
    } else {
        match wanted {
            GgmlDType::Q4K => GgmlDType::Q5_0,
            GgmlDType::Q6K => GgmlDType::Q8_0,
            other => other,
        }
    };
    cols.is_multiple_of(chosen.block_size()).then_some(chosen)
}

/// Rows quantized per parallel task.
const ROWS_PER_TASK: usize = 64;

/// A dense `[rows, cols]` matrix (f32, f16 or bf16) as `dtype` blocks, row after row (the
/// bytes a GGUF file holds), quantized on every core. `cols` must be a multiple of the type's
/// block size. Each task widens only its own rows to f32, so a matrix is never held in f32
/// whole.
pub(crate) fn quantize_rows(matrix: &Tensor, dtype: GgmlDType) -> Result<Vec<u8>> {
    let (rows, cols) = matrix.dims2()?;
    let parts: Vec<Vec<u8>> = (0..rows.div_ceil(ROWS_PER_TASK))
        .into_par_iter()
        .map(|task| {
            let (start, count) = (task * ROWS_PER_TASK, ROWS_PER_TASK.min(rows - task * ROWS_PER_TASK));
            // A tensor of these rows alone: `QTensor::quantize` reads a tensor's storage from
            // its start, so a narrowed view would quantize the first rows again.
            let values = matrix.narrow(0, start, count)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            let part = Tensor::from_vec(values, (count, cols), &Device::Cpu)?;
            Ok(QTensor::quantize(&part, dtype)?.data()?.into_owned())
        })
        .collect::<Result<_>>()?;
    Ok(parts.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for scheme in [QuantScheme::Q8_0, QuantScheme::Q5_0, QuantScheme::Q4K, QuantScheme::Q6K, QuantScheme::Q4KM] {
            assert_eq!(scheme.name().parse::<QuantScheme>(), Ok(scheme));
        }
        assert_eq!("Q4_K_M".parse::<QuantScheme>(), Ok(QuantScheme::Q4KM));
        let error = "q3_k".parse::<QuantScheme>().unwrap_err();
        assert!(error.contains("q3_k") && error.contains(QuantScheme::NAMES), "{error}");
    }

    #[test]
    fn more_bits_follows_llama_cpp_for_24_layers_in_file_order() {
        let chosen: Vec<usize> = (0..24).filter(|&i| more_bits(i, 24)).collect();
        assert_eq!(chosen, [0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23]);
        let order: Vec<usize> = (0..12).map(|l| file_order_index(l, 12)).collect();
        assert_eq!(order, [0, 1, 4, 5, 6, 7, 8, 9, 10, 11, 2, 3], "0, 1, 10, 11, 2, …");
        let layers: Vec<usize> = (0..24).filter(|&l| more_bits(file_order_index(l, 24), 24)).collect();
        assert_eq!(layers, [0, 1, 3, 6, 7, 8, 9, 10, 13, 16, 19, 21]);
    }

    #[test]
    fn k_types_fall_back_for_narrow_rows_and_nothing_fits_odd_ones() {
        let q4k = QuantScheme::Q4K;
        assert_eq!(q4k.tensor_type(WeightName::Embedding, 4096, 32, false), Some(GgmlDType::Q4K));
        assert_eq!(q4k.tensor_type(WeightName::Embedding, 896, 24, false), Some(GgmlDType::Q5_0));
        assert_eq!(QuantScheme::Q6K.tensor_type(WeightName::Output, 896, 24, false), Some(GgmlDType::Q8_0));
        assert_eq!(QuantScheme::Q8_0.tensor_type(WeightName::Output, 100, 24, false), None);
    }

    /// Candle's blocks read by Ponder's kernels: a product with the kernels differs from the
    /// dense product with candle's own dequantized weights only by the kernels' 8-bit
    /// activations (well under 1%), so each type's layout is read right.
    #[test]
    fn the_kernels_read_every_schemes_blocks_as_candle_wrote_them() {
        use ponder_kernels::{matmul, Isa, MatmulJob, QuantMatrix, QuantType, QuantizedActivations};
        let (rows, cols) = (16, 512);
        let weights: Vec<f32> = (0..rows * cols).map(|i| ((i * 7919 % 1009) as f32 - 504.0) / 700.0).collect();
        let x: Vec<f32> = (0..cols).map(|i| ((i * 131 % 97) as f32 - 48.0) / 50.0).collect();
        let matrix = Tensor::from_vec(weights, (rows, cols), &Device::Cpu).unwrap();
        let isa = Isa::detect();
        let kinds = [
            (GgmlDType::Q8_0, QuantType::Q8_0),
            (GgmlDType::Q5_0, QuantType::Q5_0),
            (GgmlDType::Q4K, QuantType::Q4K),
            (GgmlDType::Q6K, QuantType::Q6K),
        ];
        for (dtype, kind) in kinds {
            let bytes = quantize_rows(&matrix, dtype).unwrap();
            let dequantized: Vec<f32> = QTensor::quantize(&matrix, dtype)
                .unwrap()
                .dequantize(&Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let packed = QuantMatrix::new(kind, rows, cols, &bytes).unwrap();
            let mut acts = QuantizedActivations::default();
            acts.quantize(isa, &x, 1, cols, &[kind]);
            let mut out = vec![0.0f32; rows];
            matmul(isa, &acts, &mut [MatmulJob { weights: &packed, out: &mut out }]);
            for (r, &got) in out.iter().enumerate() {
                let row = &dequantized[r * cols..(r + 1) * cols];
                let expected: f32 = row.iter().zip(&x).map(|(w, v)| w * v).sum();
                let scale: f32 = row.iter().zip(&x).map(|(w, v)| (w * v).abs()).sum();
                assert!((got - expected).abs() < 0.01 * scale, "{dtype:?} row {r}: {got} against {expected}");
            }
        }
    }

    /// Each type's blocks, read back by the kernels' scalar reference formats, stay within
    /// the error its bits allow. Gaussian-like weights (a sum of uniforms), rows of 512.
    /// Measured relative RMS error: Q8_0 0.0050 (a uniform step of a block's largest / 127 gives
    /// 0.0045), Q6_K 0.0176, Q5_0 0.0405, Q4_K 0.0717; the bounds are about 1.25× those.
    #[test]
    fn each_type_dequantizes_within_its_error_bound() {
        use ponder_kernels::{QuantMatrix, QuantType};
        let (rows, cols) = (32, 512);
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let weights: Vec<f32> = (0..rows * cols).map(|_| (0..4).map(|_| uniform()).sum::<f32>() * 0.05).collect();
        let matrix = Tensor::from_slice(&weights, (rows, cols), &Device::Cpu).unwrap();
        let power: f32 = weights.iter().map(|w| w * w).sum();
        let mut errors = Vec::new();
        for (dtype, kind, bound) in [
            (GgmlDType::Q8_0, QuantType::Q8_0, 0.0065),
            (GgmlDType::Q6K, QuantType::Q6K, 0.022),
            (GgmlDType::Q5_0, QuantType::Q5_0, 0.05),
            (GgmlDType::Q4K, QuantType::Q4K, 0.09),
        ] {
            let packed = QuantMatrix::new(kind, rows, cols, &quantize_rows(&matrix, dtype).unwrap()).unwrap();
            let mut row = vec![0.0f32; cols];
            let mut noise = 0.0f32;
            for r in 0..rows {
                packed.dequantize_row(r, &mut row);
                noise += row.iter().zip(&weights[r * cols..]).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
            }
            let error = (noise / power).sqrt();
            println!("{dtype:?}: relative RMS error {error:.4}");
            assert!(error < bound, "{dtype:?}: {error} ≥ {bound}");
            errors.push(error);
        }
        assert!(errors.windows(2).all(|w| w[0] < w[1]), "fewer bits, larger error: {errors:?}");
    }

    #[test]
    fn quantized_rows_are_the_bytes_of_the_whole_tensor() {
        let values: Vec<f32> = (0..200 * 64).map(|i| ((i * 37 % 101) as f32 - 50.0) / 13.0).collect();
        let matrix = Tensor::from_vec(values, (200, 64), &candle_core::Device::Cpu).unwrap();
        for dtype in [GgmlDType::Q8_0, GgmlDType::Q5_0] {
            let whole = QTensor::quantize(&matrix, dtype).unwrap().data().unwrap().into_owned();
            assert_eq!(quantize_rows(&matrix, dtype).unwrap(), whole, "{dtype:?}");
        }
    }
}
