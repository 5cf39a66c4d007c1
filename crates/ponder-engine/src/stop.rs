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
    /// The stop string that was found; nothing after it may be shown.
    pub stopped: Option<String>,
}

impl StopStrings {
    /// A watcher for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        Self { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), held: String::new() }
    }

    /// Adds text; returns what can be shown now.
    pub fn push(&mut self, text: &str) -> StopCheck {
        if self.stops.is_empty() {
            return StopCheck { emit: text.to_string(), stopped: None };
        }
        let mut buffer = std::mem::take(&mut self.held);
        buffer.push_str(text);
        // The earliest match wins; of two starting at one place, the one listed first.
        let earliest =
            self.stops.iter().filter_map(|stop| Some((buffer.find(stop.as_str())?, stop))).min_by_key(|m| m.0);
        if let Some((at, stop)) = earliest {
            let stop = stop.clone();
            buffer.truncate(at);
            return StopCheck { emit: buffer, stopped: Some(stop) };
        }
        let hold = self.longest_partial_suffix(&buffer);
        self.held = buffer.split_off(buffer.len() - hold);
        StopCheck { emit: buffer, stopped: None }
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

    fn run(stops: &[&str], pieces: &[&str]) -> (String, Option<String>) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut watcher = StopStrings::new(&stops);
        let mut out = String::new();
        for piece in pieces {
            let check = watcher.push(piece);
            out.push_str(&check.emit);
            if check.stopped.is_some() {
                return (out, check.stopped);
            }
        }
        out.push_str(&watcher.finish());
        (out, None)
    }

    #[test]
    fn no_stops_passes_everything() {
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), None));
    }

    #[test]
    fn stop_string_inside_one_piece() {
        assert_eq!(run(&["END"], &["abcENDdef"]), ("abc".into(), Some("END".into())));
    }

    #[test]
    fn stop_string_across_pieces_is_never_shown() {
        let stops = vec!["###".to_string()];
        let mut watcher = StopStrings::new(&stops);
        assert_eq!(watcher.push("hello #"), StopCheck { emit: "hello ".into(), stopped: None });
        assert_eq!(watcher.push("#"), StopCheck { emit: "".into(), stopped: None });
        assert_eq!(watcher.push("# rest"), StopCheck { emit: "".into(), stopped: Some("###".into()) });
    }

    #[test]
    fn broken_partial_match_is_released() {
        assert_eq!(run(&["###"], &["a #", "# b"]), ("a ## b".into(), None));
    }

    #[test]
    fn held_text_is_released_at_the_end() {
        assert_eq!(run(&["STOP"], &["a ST"]), ("a ST".into(), None));
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        assert_eq!(run(&["cd", "b"], &["abcd"]), ("a".into(), Some("b".into())));
        assert_eq!(run(&["ab", "a"], &["xabc"]), ("x".into(), Some("ab".into())));
    }

    #[test]
    fn unicode_boundaries_are_respected() {
        assert_eq!(run(&["日本語"], &["こんにちは日", "本語です"]), ("こんにちは".into(), Some("日本語".into())));
        assert_eq!(run(&["🙂!"], &["a🙂", "b"]), ("a🙂b".into(), None));
    }
}
