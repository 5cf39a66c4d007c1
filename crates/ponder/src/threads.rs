//! Sizing the compute thread pool.

/// Sets the number of compute threads (candle's pool reads `CANDLE_NUM_THREADS` and
/// `RAYON_NUM_THREADS` once, at first use). Must run before any model code. `None` keeps the
/// environment's setting, else one thread per physical core.
pub fn configure(threads: Option<usize>) {
    if let Some(n) = threads {
        // SAFETY-free in edition 2021; done before any other thread exists.
        std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
}
