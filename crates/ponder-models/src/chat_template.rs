//! Rendering a model's own Jinja chat template, as Hugging Face `apply_chat_template` does.

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};

use crate::{ModelError, Result};

const TEMPLATE_NAME: &str = "chat";
/// Context variable carrying the render time for `strftime_now` (seconds since the epoch).
const NOW_VARIABLE: &str = "__ponder_now";

/// A compiled chat template with the model's BOS and EOS texts.
///
/// The environment matches transformers': `trim_blocks` and `lstrip_blocks` on, loop
/// controls, Python string/dict methods (`.strip()`, `.split()`, `.items()`),
/// `raise_exception`, `strftime_now`, and a `tojson` that writes JSON as Python's
/// `json.dumps` does.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// Compiles `source`. A syntax error is reported here, not at the first request.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| ModelError::Template(describe(&e)))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_template_owned(TEMPLATE_NAME, source.to_string()).map_err(|e| ModelError::Template(describe(&e)))?;
        Ok(Self { env, source: source.to_string(), bos_token: bos_token.into(), eos_token: eos_token.into() })
    }

    /// The template's text (what it does with tools, for example, is read from it).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders `messages` (OpenAI-style objects with `role` and `content`). `kwargs` are
    /// extra template variables such as `enable_thinking`; they cannot replace `messages`.
    pub fn render(
        &self,
        messages: &[serde_json::Value],
        add_generation_prompt: bool,
        kwargs: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String> {
        self.render_at(messages, add_generation_prompt, kwargs, chrono::Utc::now().timestamp())
    }

    /// [`render`](Self::render) with a fixed clock (seconds since the epoch) for `strftime_now`.
    pub fn render_at(
        &self,
        messages: &[serde_json::Value],
        add_generation_prompt: bool,
        kwargs: &serde_json::Map<String, serde_json::Value>,
        now: i64,
    ) -> Result<String> {
        let mut context = kwargs.clone();
        context.insert("messages".into(), messages.to_vec().into());
        context.insert("add_generation_prompt".into(), add_generation_prompt.into());
        context.entry("bos_token").or_insert_with(|| self.bos_token.clone().into());
        context.entry("eos_token").or_insert_with(|| self.eos_token.clone().into());
        context.insert(NOW_VARIABLE.into(), now.into());
        let template = self.env.get_template(TEMPLATE_NAME).map_err(|e| ModelError::Template(describe(&e)))?;
        template.render(Value::from(minijinja::value::Serde(&context))).map_err(|e| ModelError::Template(describe(&e)))
    }
}

/// The error and its causes in one line (minijinja puts the template's message in the source).
fn describe(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn raise_exception(message: String) -> std::result::Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

fn strftime_now(state: &State, format: String) -> std::result::Result<Value, Error> {
    let seconds = state.lookup(NOW_VARIABLE).and_then(|v| i64::try_from(v).ok()).unwrap_or(0);
    let time = chrono::DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "time out of range"))?;
    let mut text = String::new();
    use std::fmt::Write;
    write!(text, "{}", time.format(&format))
        .map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("invalid strftime format `{format}`")))?;
    Ok(Value::from(text))
}

/// `tojson` as in transformers: `json.dumps(value, ensure_ascii=False, indent=indent,
/// separators=separators, sort_keys=sort_keys)`.
fn tojson(value: &Value, kwargs: Kwargs) -> std::result::Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let _ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;
    let (item_sep, key_sep) = match separators.as_deref() {
        Some([item, key]) => (item.clone(), key.clone()),
        Some(_) => return Err(Error::new(ErrorKind::InvalidOperation, "separators must be two strings")),
        None if indent.is_some() => (",".into(), ": ".into()),
        None => (", ".into(), ": ".into()),
    };
    let writer = PythonJson { indent, item_sep, key_sep, sort_keys: sort_keys.unwrap_or(false) };
    let mut out = String::new();
    writer.write(value, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

struct PythonJson {
    indent: Option<usize>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

impl PythonJson {
    fn write(&self, value: &Value, depth: usize, out: &mut String) -> std::result::Result<(), Error> {
        match value.kind() {
            ValueKind::Undefined | ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
            ValueKind::Number => out.push_str(&python_number(value)),
            ValueKind::String => write_json_string(value.as_str().unwrap_or_default(), out),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = value.try_iter()?.collect();
                self.write_container(out, depth, '[', ']', &items, |item, out| self.write(item, depth + 1, out))?;
            }
            ValueKind::Map => {
                let mut keys: Vec<Value> = value.try_iter()?.collect();
                if self.sort_keys {
                    keys.sort_by_key(|k| k.to_string());
                }
                self.write_container(out, depth, '{', '}', &keys, |key, out| {
                    write_json_string(&key.to_string(), out);
                    out.push_str(&self.key_sep);
                    self.write(&value.get_item(key)?, depth + 1, out)
                })?;
            }
            _ => write_json_string(&value.to_string(), out),
        }
        Ok(())
    }

    fn write_container(
        &self,
        out: &mut String,
        depth: usize,
        open: char,
        close: char,
        items: &[Value],
        mut write_item: impl FnMut(&Value, &mut String) -> std::result::Result<(), Error>,
    ) -> std::result::Result<(), Error> {
        out.push(open);
        if items.is_empty() {
            out.push(close);
            return Ok(());
        }
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(&self.item_sep);
            }
            if let Some(indent) = self.indent {
                out.push('\n');
                out.push_str(&" ".repeat(indent * (depth + 1)));
            }
            write_item(item, out)?;
        }
        if let Some(indent) = self.indent {
            out.push('\n');
            out.push_str(&" ".repeat(indent * depth));
        }
        out.push(close);
        Ok(())
    }
}

/// Integers as integers, floats as Python prints them (`1.0`, `0.5`).
fn python_number(value: &Value) -> String {
    if value.is_integer() {
        return value.to_string();
    }
    match f64::try_from(value.clone()) {
        Ok(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
        Ok(f) if f.is_finite() => f.to_string(),
        Ok(f) if f.is_nan() => "NaN".into(),
        Ok(f) if f > 0.0 => "Infinity".into(),
        Ok(_) => "-Infinity".into(),
        Err(_) => value.to_string(),
    }
}

/// A JSON string literal, escaping only what JSON requires (`ensure_ascii=False`).
fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(source: &str, context: serde_json::Value) -> String {
        let template = ChatTemplate::new(source, "<s>", "</s>").unwrap();
        let kwargs = context.as_object().cloned().unwrap_or_default();
        template.render_at(&[], false, &kwargs, 0).unwrap()
    }

    #[test]
    fn tojson_writes_like_python_json_dumps() {
        let out = render("{{ x | tojson }}", json!({"x": {"b": [1, 2.5, 3.0, true, null], "a": "é\"<tag>\n"}}));
        assert_eq!(out, r#"{"b": [1, 2.5, 3.0, true, null], "a": "é\"<tag>\n"}"#);
    }

    #[test]
    fn tojson_indent_and_sort_keys() {
        let out = render("{{ x | tojson(indent=2, sort_keys=true) }}", json!({"x": {"b": [1], "a": {}}}));
        assert_eq!(out, "{\n  \"a\": {},\n  \"b\": [\n    1\n  ]\n}");
    }

    #[test]
    fn raise_exception_is_a_template_error() {
        let template = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", "", "").unwrap();
        let error = template.render(&[], false, &Default::default()).unwrap_err().to_string();
        assert!(error.contains("roles must alternate"), "{error}");
    }

    #[test]
    fn strftime_now_uses_the_render_clock() {
        let template = ChatTemplate::new("{{ strftime_now('%d %b %Y') }}", "", "").unwrap();
        // 2024-07-26 00:00:00 UTC
        assert_eq!(template.render_at(&[], false, &Default::default(), 1_721_952_000).unwrap(), "26 Jul 2024");
    }

    #[test]
    fn loop_controls_and_python_methods() {
        let out = render(
            "{% for x in xs %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}|{{ s.strip().split(',')[-1] }}",
            json!({"xs": [1, 2, 3, 4], "s": "  a,b,c  "}),
        );
        assert_eq!(out, "12|c");
    }

    #[test]
    fn syntax_errors_are_reported_at_compile_time() {
        let error = ChatTemplate::new("{% if %}", "", "").err().unwrap();
        assert!(matches!(error, ModelError::Template(_)));
    }

    #[test]
    fn trim_and_lstrip_blocks_match_transformers() {
        let out = render("a\n  {% if true %}\nb\n  {% endif %}\nc", json!({}));
        assert_eq!(out, "a\nb\nc");
    }
}
