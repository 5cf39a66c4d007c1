//! The logits of one forward pass, in one buffer that is reused from step to step.

/// One row of `vocab` logits per chunk that wanted them, in chunk order, stored flat.
///
/// A worker keeps one `Logits` and hands it to every forward pass, so a step neither
/// allocates nor zeroes a fresh `rows × vocab` buffer (16 rows of Qwen2.5's 151,936
/// logits are 9.7 MB).
#[derive(Debug, Default, Clone)]
pub struct Logits {
    values: Vec<f32>,
    vocab: usize,
}

impl Logits {
    /// Logits from whole rows (tests and fakes).
    pub fn from_rows(rows: &[Vec<f32>]) -> Self {
        let vocab = rows.first().map_or(0, Vec::len);
        assert!(rows.iter().all(|r| r.len() == vocab), "logit rows differ in length");
        Self { values: rows.concat(), vocab }
    }

    /// Resizes to `rows × vocab` and returns the buffer for a forward pass to overwrite
    /// (old values stay where the size allows; every value must be written).
    pub fn reset(&mut self, rows: usize, vocab: usize) -> &mut [f32] {
        self.vocab = vocab;
        self.values.resize(rows * vocab, 0.0);
        &mut self.values
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.vocab).unwrap_or(0)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per row.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.vocab..(i + 1) * self.vocab]
    }

    /// Every row, in order.
    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.values.chunks_exact(self.vocab.max(1))
    }

    /// Every row, mutable (samplers apply penalties and biases in place).
    pub fn rows_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        self.values.chunks_exact_mut(self.vocab.max(1))
    }

    /// Every row copied out (tests).
    pub fn to_rows(&self) -> Vec<Vec<f32>> {
        self.rows().map(<[f32]>::to_vec).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_reset_reuses_the_buffer() {
        let mut logits = Logits::from_rows(&[vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]);
        assert_eq!((logits.len(), logits.vocab()), (2, 3));
        assert_eq!(logits.row(1), &[4.0, 5.0, 6.0]);
        assert_eq!(logits.to_rows(), vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]);
        let capacity = logits.values.capacity();
        logits.reset(1, 3).copy_from_slice(&[7.0, 8.0, 9.0]);
        assert_eq!(logits.to_rows(), vec![vec![7.0, 8.0, 9.0]]);
        assert_eq!(logits.values.capacity(), capacity);
        for row in logits.rows_mut() {
            row[0] = -1.0;
        }
        assert_eq!(logits.row(0), &[-1.0, 8.0, 9.0]);
    }

    #[test]
    fn no_rows() {
        let mut logits = Logits::default();
        assert!(logits.is_empty());
        assert_eq!(logits.rows().count(), 0);
        logits.reset(0, 5);
        assert!(logits.is_empty());
        assert_eq!(logits.rows_mut().count(), 0);
        assert!(Logits::from_rows(&[]).is_empty());
    }
}
