//! Following a JSON text as it streams in, without parsing it whole: where a value ends, and,
//! in a call object (`{"name": …, "arguments": …}`), where its name and arguments are.

/// Where one depth-1 value of an object lies in the text, once it has begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// Its first byte.
    pub start: usize,
    /// One past its last byte, once it has ended.
    pub end: Option<usize>,
}

/// Whether a scan is inside a JSON string, and just after a backslash there.
#[derive(Debug, Clone, Copy, Default)]
struct StringState {
    inside: bool,
    escape: bool,
}

impl StringState {
    /// Takes one character inside a string; returns whether it closed the string.
    fn closes(&mut self, c: char) -> bool {
        if self.escape {
            self.escape = false;
        } else if c == '\\' {
            self.escape = true;
        } else if c == '"' {
            self.inside = false;
            return true;
        }
        false
    }
}

/// Scans a JSON object as it streams in, noting the span of each depth-1 value by key.
#[derive(Debug, Clone, Default)]
pub(crate) struct ObjectScan {
    /// Bytes scanned so far.
    scanned: usize,
    depth: usize,
    string: StringState,
    string_start: usize,
    /// At depth 1, the next string is a key.
    expecting_key: bool,
    key: Option<String>,
    /// The depth-1 value being read, and whether it is a primitive (number, literal).
    value: Option<(usize, bool)>,
    /// Spans of the depth-1 values seen, by key.
    spans: Vec<(String, Span)>,
    /// The object has closed (at this byte, exclusive).
    end: Option<usize>,
    /// The text is not an object.
    broken: bool,
}

impl ObjectScan {
    /// Scans `text` from where the last call stopped (`text` only ever grows); stops at the
    /// object's end.
    pub fn scan(&mut self, text: &str) {
        if self.end.is_some() || self.broken {
            return;
        }
        for (offset, c) in text[self.scanned..].char_indices() {
            let i = self.scanned + offset;
            self.step(text, i, c);
            if self.end.is_some() || self.broken {
                return;
            }
        }
        self.scanned = text.len();
    }

    fn step(&mut self, text: &str, i: usize, c: char) {
        if self.string.inside {
            if self.string.closes(c) {
                if self.depth == 1 && self.expecting_key {
                    self.key = serde_json::from_str(&text[self.string_start..=i]).ok();
                } else if self.depth == 1 && self.value.is_some_and(|(start, _)| start == self.string_start) {
                    self.end_value(i + 1);
                }
            }
            return;
        }
        let primitive_open = self.depth == 1 && self.value.is_some_and(|(_, primitive)| primitive);
        match c {
            _ if self.depth == 0 => match c {
                '{' => {
                    self.depth = 1;
                    self.expecting_key = true;
                }
                c if c.is_whitespace() => {}
                _ => self.broken = true,
            },
            '"' => {
                self.string.inside = true;
                self.string_start = i;
                self.begin_value(i, false);
            }
            '{' | '[' => {
                self.begin_value(i, false);
                self.depth += 1;
            }
            '}' | ']' if self.depth == 1 => {
                if primitive_open {
                    self.end_value(i);
                }
                self.depth = 0;
                self.end = Some(i + 1);
            }
            '}' | ']' => {
                self.depth -= 1;
                if self.depth == 1 && self.value.is_some() {
                    self.end_value(i + 1);
                }
            }
            ':' if self.depth == 1 => self.expecting_key = false,
            ',' if self.depth == 1 => {
                if primitive_open {
                    self.end_value(i);
                }
                self.expecting_key = true;
                self.key = None;
            }
            c if c.is_whitespace() => {
                if primitive_open {
                    self.end_value(i);
                }
            }
            _ => self.begin_value(i, true),
        }
    }

    /// A depth-1 value starts at `i`, unless one is open or a key is expected.
    fn begin_value(&mut self, i: usize, primitive: bool) {
        if self.depth == 1 && !self.expecting_key && self.value.is_none() {
            self.value = Some((i, primitive));
            let key = self.key.clone().unwrap_or_default();
            self.spans.push((key, Span { start: i, end: None }));
        }
    }

    fn end_value(&mut self, end: usize) {
        self.value = None;
        if let Some((_, span)) = self.spans.last_mut() {
            span.end = Some(end);
        }
    }

    /// The span of the depth-1 value under `key`, once it has begun.
    pub fn span(&self, key: &str) -> Option<Span> {
        self.spans.iter().find(|(k, _)| k == key).map(|&(_, span)| span)
    }

    /// Where the object ended (one past its `}`), once it has.
    pub fn end(&self) -> Option<usize> {
        self.end
    }

    /// Whether the text cannot be an object (it starts with something else).
    pub fn is_broken(&self) -> bool {
        self.broken
    }
}

/// Scans one JSON value of any kind as it streams in, to find its end.
#[derive(Debug, Clone, Default)]
pub(crate) struct ValueScan {
    scanned: usize,
    depth: usize,
    string: StringState,
    started: bool,
    end: Option<usize>,
}

impl ValueScan {
    /// Scans `text` (which only ever grows) up to the value's end.
    pub fn scan(&mut self, text: &str) {
        if self.end.is_some() {
            return;
        }
        for (offset, c) in text[self.scanned..].char_indices() {
            let i = self.scanned + offset;
            if self.string.inside {
                if self.string.closes(c) && self.depth == 0 {
                    self.end = Some(i + 1);
                    return;
                }
                continue;
            }
            match c {
                '"' => {
                    self.started = true;
                    self.string.inside = true;
                }
                '{' | '[' => {
                    self.started = true;
                    self.depth += 1;
                }
                '}' | ']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.end = Some(i + 1);
                        return;
                    }
                }
                c if c.is_whitespace() || c == ',' => {
                    if self.started && self.depth == 0 {
                        self.end = Some(i);
                        return;
                    }
                }
                _ => self.started = true,
            }
        }
        self.scanned = text.len();
    }

    /// Where the value ended, once it has.
    pub fn end(&self) -> Option<usize> {
        self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans `text` fed in pieces of `piece` bytes (on character boundaries).
    fn object_in_pieces(text: &str, piece: usize) -> ObjectScan {
        let mut scan = ObjectScan::default();
        let mut fed = String::new();
        for c in text.chars() {
            fed.push(c);
            if fed.len().is_multiple_of(piece) {
                scan.scan(&fed);
            }
        }
        scan.scan(&fed);
        scan
    }

    #[test]
    fn finds_the_name_and_arguments_however_the_text_arrives() {
        let text = r#"{"name": "get_weather", "arguments": {"city": "Paris, \"FR\"", "days": [1, {"x": "}"}]}} tail"#;
        for piece in [1, 2, 3, 7, 1000] {
            let scan = object_in_pieces(text, piece);
            let name = scan.span("name").unwrap();
            assert_eq!(&text[name.start..name.end.unwrap()], "\"get_weather\"", "pieces of {piece}");
            let args = scan.span("arguments").unwrap();
            assert_eq!(&text[args.start..args.end.unwrap()], r#"{"city": "Paris, \"FR\"", "days": [1, {"x": "}"}]}"#);
            assert_eq!(&text[scan.end().unwrap()..], " tail");
        }
    }

    #[test]
    fn primitive_values_end_at_a_comma_or_the_close() {
        let text = r#"{"n": 12, "ok": true,"last":null}"#;
        let scan = object_in_pieces(text, 1);
        let span = |key| {
            let s = scan.span(key).unwrap();
            &text[s.start..s.end.unwrap()]
        };
        assert_eq!((span("n"), span("ok"), span("last")), ("12", "true", "null"));
        assert_eq!(scan.end(), Some(text.len()));
    }

    #[test]
    fn an_open_value_has_no_end_yet_and_text_that_is_no_object_is_broken() {
        let scan = object_in_pieces(r#"{"name": "f", "arguments": {"a": [1, 2"#, 4);
        assert!(scan.span("arguments").unwrap().end.is_none());
        assert!(scan.end().is_none());
        assert!(object_in_pieces("  plain text", 1).is_broken());
        assert!(!object_in_pieces("  {", 1).is_broken());
    }

    #[test]
    fn value_scan_finds_the_end_of_any_value() {
        for (text, end) in [(r#"{"a": "}"} rest"#, 10), ("[1, [2]]x", 8), (r#""s\"" "#, 5), ("42 ", 2)] {
            let mut scan = ValueScan::default();
            let mut fed = String::new();
            for c in text.chars() {
                fed.push(c);
                scan.scan(&fed);
            }
            assert_eq!(scan.end(), Some(end), "{text}");
        }
    }
}
