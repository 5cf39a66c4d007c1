//! Stop strings over streamed text: text that might be the start of a stop string is held
//! back until it is known, and a stop string itself is never emitted.

/// Watches a text stream for any of a set of stop strings.
#[derive(Debug, Clone, Default)]
pub struct StopStrings {
    stops: Vec<String>,
    held: String,
}

/// What one piece of text did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StopCheck {
    /// Text that is safe to show.
    pub emit: String,
    /// A stop string was found; nothing after it may be shown.
    pub stopped: bool,
}

impl StopStrings {
    /// A watcher for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        Self { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), held: String::new() }
    }

    /// Adds text; returns what can be shown now.
    pub fn push(&mut self, text: &str) -> StopCheck {
        if self.stops.is_empty() {
            return StopCheck { emit: text.to_string(), stopped: false };
        }
        let mut buffer = std::mem::take(&mut self.held);
        buffer.push_str(text);
        let earliest = self.stops.iter().filter_map(|stop| buffer.find(stop.as_str())).min();
        if let Some(at) = earliest {
            buffer.truncate(at);
            return StopCheck { emit: buffer, stopped: true };
        }
        let hold = self.longest_partial_suffix(&buffer);
        self.held = buffer.split_off(buffer.len() - hold);
        StopCheck { emit: buffer, stopped: false }
    }

    /// The held-back text, when the stream ends without a stop string.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Byte length of the longest suffix of `text` that begins some stop string.
    fn longest_partial_suffix(&self, text: &str) -> usize {
        text.char_indices()
            .map(|(i, _)| &text[i..])
            .find(|suffix| self.stops.iter().any(|stop| stop.starts_with(suffix)))
            .map_or(0, str::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut watcher = StopStrings::new(&stops);
        let mut out = String::new();
        for piece in pieces {
            let check = watcher.push(piece);
            out.push_str(&check.emit);
            if check.stopped {
                return (out, true);
            }
        }
        out.push_str(&watcher.finish());
        (out, false)
    }

    #[test]
    fn no_stops_passes_everything() {
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
    }

    #[test]
    fn stop_string_inside_one_piece() {
        assert_eq!(run(&["END"], &["abcENDdef"]), ("abc".into(), true));
    }

    #[test]
    fn stop_string_across_pieces_is_never_shown() {
        let stops = vec!["###".to_string()];
        let mut watcher = StopStrings::new(&stops);
        assert_eq!(watcher.push("hello #"), StopCheck { emit: "hello ".into(), stopped: false });
        assert_eq!(watcher.push("#"), StopCheck { emit: "".into(), stopped: false });
        assert_eq!(watcher.push("# rest"), StopCheck { emit: "".into(), stopped: true });
    }

    #[test]
    fn broken_partial_match_is_released() {
        assert_eq!(run(&["###"], &["a #", "# b"]), ("a ## b".into(), false));
    }

    #[test]
    fn held_text_is_released_at_the_end() {
        assert_eq!(run(&["STOP"], &["a ST"]), ("a ST".into(), false));
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        assert_eq!(run(&["cd", "b"], &["abcd"]), ("a".into(), true));
    }

    #[test]
    fn unicode_boundaries_are_respected() {
        assert_eq!(run(&["日本語"], &["こんにちは日", "本語です"]), ("こんにちは".into(), true));
        assert_eq!(run(&["🙂!"], &["a🙂", "b"]), ("a🙂b".into(), false));
    }
}
