//! Pulling the final answer out of a model's reply, and comparing answers: the sweep grades
//! replies with it, and adaptive thinking compares its probes' answers with it.

/// The answer in `text`: the last `\boxed{…}`, else what follows the last "Final Answer:"
/// (or "answer is"), else the last number.
pub fn extract_answer(text: &str) -> Option<String> {
    if let Some(start) = text.rfind("\\boxed{") {
        let rest = &text[start + "\\boxed{".len()..];
        let mut depth = 1;
        for (i, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(normalize(&rest[..i]));
                    }
                }
                _ => {}
            }
        }
    }
    let lower = text.to_lowercase();
    for marker in ["final answer:", "answer is", "answer:"] {
        if let Some(at) = lower.rfind(marker) {
            let after = &text[at + marker.len()..];
            if let Some(number) = last_number(after.lines().next().unwrap_or_default()).or_else(|| first_number(after))
            {
                return Some(number);
            }
        }
    }
    last_number(text)
}

fn numbers(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let continues = c.is_ascii_digit()
            || (c == '.' && !current.is_empty() && chars.get(i + 1).is_some_and(char::is_ascii_digit))
            || (c == ',' && !current.is_empty() && chars.get(i + 1).is_some_and(char::is_ascii_digit))
            || (c == '-' && current.is_empty() && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if continues {
            current.push(c);
        } else if !current.is_empty() {
            found.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        found.push(current);
    }
    found.into_iter().filter(|n| n != "-").map(|n| normalize(&n)).collect()
}

fn last_number(text: &str) -> Option<String> {
    numbers(text).pop()
}

fn first_number(text: &str) -> Option<String> {
    numbers(text).into_iter().next()
}

/// Strips spaces, `$`, thousands separators and a trailing `.0`.
pub fn normalize(answer: &str) -> String {
    let cleaned: String =
        answer.trim().trim_end_matches('.').chars().filter(|c| !matches!(c, ',' | '$' | ' ')).collect();
    match cleaned.parse::<f64>() {
        Ok(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        Ok(v) => format!("{v}"),
        Err(_) => cleaned,
    }
}

/// Whether a reply's answer equals the expected one (numerically when both are numbers).
pub fn answers_match(given: &str, expected: &str) -> bool {
    let (a, b) = (normalize(given), normalize(expected));
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-6 * y.abs().max(1.0),
        _ => a.eq_ignore_ascii_case(&b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_wins() {
        assert_eq!(extract_answer("so 3 or \\boxed{42} and 7").as_deref(), Some("42"));
        assert_eq!(extract_answer("\\boxed{\\frac{1}{2}}").as_deref(), Some("\\frac{1}{2}"));
    }

    #[test]
    fn final_answer_marker() {
        assert_eq!(extract_answer("First 10, then 20.\nFinal Answer: 1,234 cookies").as_deref(), Some("1234"));
        assert_eq!(extract_answer("The answer is $56.").as_deref(), Some("56"));
        assert_eq!(extract_answer("Final Answer:\n\n 17").as_deref(), Some("17"));
    }

    #[test]
    fn last_number_otherwise() {
        assert_eq!(extract_answer("12 + 30 = 42").as_deref(), Some("42"));
        assert_eq!(extract_answer("It drops to -5 degrees.").as_deref(), Some("-5"));
        assert_eq!(extract_answer("pi is 3.14").as_deref(), Some("3.14"));
        assert_eq!(extract_answer("no numbers here"), None);
    }

    #[test]
    fn matching_is_numeric() {
        assert!(answers_match("42.0", "42"));
        assert!(answers_match("1,000", "1000"));
        assert!(!answers_match("41", "42"));
        assert!(answers_match("Paris", "paris"));
    }
}
