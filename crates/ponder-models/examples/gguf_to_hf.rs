//! Writes a Qwen2/Qwen3 GGUF file as a Hugging Face directory of f16 weights (dequantized),
//! with its config, tokenizer and chat template: a real checkpoint to test `--quantize` on.
//!
//! `cargo run --release -p ponder-models --example gguf_to_hf -- MODEL.gguf OUT_DIR`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [gguf, out] = args.as_slice() else {
        return Err("usage: gguf_to_hf MODEL.gguf OUT_DIR".into());
    };
    let started = std::time::Instant::now();
    let count = ponder_models::export::gguf_to_hf(gguf.as_ref(), out.as_ref())?;
    println!("{count} tensors written to {out} in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
