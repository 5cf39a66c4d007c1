//! The responses kept for `previous_response_id` and `GET /v1/responses/{id}`: in memory,
//! bounded in bytes and in age, the oldest dropped first. Time is passed in, so the bounds
//! are tested without waiting.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How much the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Most bytes of JSON kept (responses and their input together); 0 keeps nothing.
    pub max_bytes: usize,
    /// Longest a response is kept.
    pub max_age: Duration,
}

impl StoreLimits {
    /// The default most bytes kept: 64 MiB.
    pub const DEFAULT_MAX_BYTES: usize = 64 << 20;
    /// The default longest a response is kept, in seconds: one hour.
    pub const DEFAULT_MAX_AGE_SECONDS: u64 = 3600;
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self { max_bytes: Self::DEFAULT_MAX_BYTES, max_age: Duration::from_secs(Self::DEFAULT_MAX_AGE_SECONDS) }
    }
}

/// One kept response.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The response, as it was returned.
    pub response: Value,
    /// The items the response answered, a previous response's included (not its
    /// instructions): with the response's output, the conversation a follow-up continues.
    pub input: Vec<Value>,
}

impl Stored {
    /// The conversation so far: the input, then the response's output items.
    pub fn conversation(&self) -> Vec<Value> {
        let output = self.response.get("output").and_then(Value::as_array).cloned().unwrap_or_default();
        self.input.iter().cloned().chain(output).collect()
    }

    fn size(&self) -> usize {
        let json = |v: &Value| serde_json::to_vec(v).map_or(0, |b| b.len());
        json(&self.response) + self.input.iter().map(json).sum::<usize>()
    }
}

struct Entry {
    stored: Arc<Stored>,
    size: usize,
    at: Instant,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Ids in the order they were kept (the oldest first).
    order: VecDeque<String>,
    bytes: usize,
}

impl Inner {
    fn drop_oldest(&mut self) {
        if let Some(id) = self.order.pop_front() {
            if let Some(entry) = self.entries.remove(&id) {
                self.bytes -= entry.size;
            }
        }
    }

    fn expire(&mut self, now: Instant, max_age: Duration) {
        while let Some(id) = self.order.front() {
            match self.entries.get(id) {
                Some(entry) if now.saturating_duration_since(entry.at) <= max_age => break,
                _ => self.drop_oldest(),
            }
        }
    }
}

/// Kept responses, by id.
pub struct ResponseStore {
    limits: StoreLimits,
    inner: Mutex<Inner>,
}

impl ResponseStore {
    /// An empty store.
    pub fn new(limits: StoreLimits) -> Self {
        Self { limits, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps consistent: every change is whole.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps `stored` under `id`, dropping the oldest responses to make room; false when it
    /// is larger than the whole store.
    pub fn insert(&self, id: String, stored: Stored, now: Instant) -> bool {
        let size = stored.size();
        if size > self.limits.max_bytes {
            return false;
        }
        let mut inner = self.lock();
        inner.expire(now, self.limits.max_age);
        if let Some(old) = inner.entries.remove(&id) {
            inner.bytes -= old.size;
            inner.order.retain(|kept| kept != &id);
        }
        while inner.bytes + size > self.limits.max_bytes {
            inner.drop_oldest();
        }
        inner.bytes += size;
        inner.order.push_back(id.clone());
        inner.entries.insert(id, Entry { stored: Arc::new(stored), size, at: now });
        true
    }

    /// The response kept under `id`, unless it is gone or too old.
    pub fn get(&self, id: &str, now: Instant) -> Option<Arc<Stored>> {
        let mut inner = self.lock();
        inner.expire(now, self.limits.max_age);
        inner.entries.get(id).map(|entry| entry.stored.clone())
    }

    /// Drops the response kept under `id`; false when there was none.
    pub fn remove(&self, id: &str, now: Instant) -> bool {
        let mut inner = self.lock();
        inner.expire(now, self.limits.max_age);
        match inner.entries.remove(id) {
            Some(entry) => {
                inner.bytes -= entry.size;
                inner.order.retain(|kept| kept != id);
                true
            }
            None => false,
        }
    }

    /// Bytes kept now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(text: &str) -> Stored {
        Stored { response: json!({"output": [{"type": "message", "text": text}]}), input: vec![json!("hi")] }
    }

    fn store(max_bytes: usize, seconds: u64) -> ResponseStore {
        ResponseStore::new(StoreLimits { max_bytes, max_age: Duration::from_secs(seconds) })
    }

    #[test]
    fn a_kept_response_continues_its_conversation() {
        let s = store(1 << 20, 60);
        let now = Instant::now();
        assert!(s.insert("a".into(), stored("x"), now));
        let kept = s.get("a", now).unwrap();
        assert_eq!(kept.conversation(), vec![json!("hi"), json!({"type": "message", "text": "x"})]);
        assert!(s.get("b", now).is_none());
    }

    #[test]
    fn the_oldest_go_first_when_the_bytes_run_out() {
        let size = stored("x").size();
        let s = store(size * 2, 60);
        let now = Instant::now();
        for id in ["a", "b", "c"] {
            assert!(s.insert(id.into(), stored("x"), now));
        }
        assert!(s.get("a", now).is_none(), "dropped to make room");
        assert!(s.get("b", now).is_some() && s.get("c", now).is_some());
        assert_eq!(s.bytes(), size * 2);
        assert!(!s.insert("big".into(), stored(&"y".repeat(size * 2)), now), "larger than the store");
        assert!(!store(0, 60).insert("a".into(), stored("x"), now), "a store of 0 bytes keeps nothing");
    }

    #[test]
    fn responses_older_than_the_age_limit_are_gone() {
        let s = store(1 << 20, 60);
        let start = Instant::now();
        s.insert("old".into(), stored("x"), start);
        s.insert("new".into(), stored("y"), start + Duration::from_secs(30));
        let later = start + Duration::from_secs(61);
        assert!(s.get("old", later).is_none());
        assert!(s.get("new", later).is_some());
        assert_eq!(s.bytes(), stored("y").size(), "the expired bytes are freed");
    }

    #[test]
    fn deleting_frees_the_bytes_and_a_second_delete_finds_nothing() {
        let s = store(1 << 20, 60);
        let now = Instant::now();
        s.insert("a".into(), stored("x"), now);
        s.insert("a".into(), stored("z"), now);
        assert_eq!(s.bytes(), stored("z").size(), "a replaced response is counted once");
        assert!(s.remove("a", now));
        assert!(!s.remove("a", now));
        assert_eq!(s.bytes(), 0);
        assert!(s.get("a", now).is_none());
    }
}
