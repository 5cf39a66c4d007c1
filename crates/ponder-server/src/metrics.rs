//! Prometheus metrics, kept in the server's own recorder (no process-global state).

use std::time::Duration;

use metrics::{counter, gauge, histogram, with_local_recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use ponder_engine::WorkerStats;
use ponder_thinking::ThinkingStats;

/// The server's metrics.
pub struct ServerMetrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

impl Default for ServerMetrics {
    fn default() -> Self {
        let recorder =
            PrometheusBuilder::new().set_buckets(LATENCY_BUCKETS).expect("non-empty buckets").build_recorder();
        let handle = recorder.handle();
        Self { recorder, handle }
    }
}

impl ServerMetrics {
    fn record(&self, f: impl FnOnce()) {
        with_local_recorder(&self.recorder, f);
    }

    /// A request reached an endpoint and got `status`.
    pub fn request(&self, endpoint: &'static str, status: u16) {
        self.record(|| {
            counter!("ponder_requests_total", "endpoint" => endpoint, "status" => status.to_string()).increment(1)
        });
    }

    /// A request failed with an error of `kind`.
    pub fn error(&self, kind: &str) {
        let kind = kind.to_string();
        self.record(|| counter!("ponder_request_errors_total", "type" => kind).increment(1));
    }

    /// Time to the first generated text.
    pub fn time_to_first_token(&self, elapsed: Duration) {
        self.record(|| histogram!("ponder_time_to_first_token_seconds").record(elapsed.as_secs_f64()));
    }

    /// Time between two pieces of streamed text.
    pub fn inter_token_latency(&self, elapsed: Duration) {
        self.record(|| histogram!("ponder_inter_token_latency_seconds").record(elapsed.as_secs_f64()));
    }

    /// Tokens of a finished request.
    pub fn finished(&self, usage: &ponder_engine::Usage, thinking: &[ThinkingStats]) {
        self.record(|| {
            counter!("ponder_prompt_tokens_total").increment(usage.prompt_tokens as u64);
            counter!("ponder_reasoning_tokens_total").increment(usage.reasoning_tokens as u64);
            counter!("ponder_prefix_cache_hit_tokens_total").increment(usage.cached_tokens as u64);
            for stats in thinking {
                counter!("ponder_thinking_continuations_total").increment(u64::from(stats.continuations));
                if stats.forced_end() {
                    counter!("ponder_thinking_forced_ends_total").increment(1);
                }
            }
        });
    }

    /// The Prometheus text, with the engine's figures (one snapshot per worker).
    pub fn render(&self, workers: &[WorkerStats]) -> String {
        self.record(|| {
            let sum = |f: fn(&WorkerStats) -> u64| workers.iter().map(f).sum::<u64>() as f64;
            gauge!("ponder_queue_length").set(sum(|w| w.queued as u64));
            gauge!("ponder_running_sequences").set(sum(|w| w.running as u64));
            gauge!("ponder_kv_blocks_used").set(sum(|w| w.kv_blocks_used as u64));
            gauge!("ponder_kv_blocks_total").set(sum(|w| w.kv_blocks_total as u64));
            gauge!("ponder_preemptions").set(sum(|w| w.preemptions));
            gauge!("ponder_engine_steps").set(sum(|w| w.steps));
            gauge!("ponder_workers_alive").set(sum(|w| u64::from(w.alive)));
            // Counted by the engine, so a request whose client went away counts too.
            counter!("ponder_generated_tokens_total").absolute(workers.iter().map(|w| w.generated_tokens).sum());
        });
        self.handle.render()
    }
}
