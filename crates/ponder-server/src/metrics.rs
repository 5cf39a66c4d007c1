//! Prometheus metrics, kept in the server's own recorder (no process-global state).
//!
//! Ponder's own series (`ponder_*`), and beside them the figures a vLLM server publishes under
//! vLLM's names (`vllm:*`, labelled `model_name`), with the meaning vLLM gives them: what
//! Kubernetes' inference gateway (its endpoint picker's vLLM metric set) and the common vLLM
//! dashboards read, so a Ponder replica needs no metric mapping there.

use std::time::Duration;

use metrics::{counter, gauge, histogram, with_local_recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use ponder_engine::{Usage, WorkerStats};
use ponder_thinking::ThinkingStats;

/// The server's metrics.
pub struct ServerMetrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// The served model's name: the `model_name` label of the `vllm:*` series.
    model_name: String,
}

const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Time-to-first-token buckets of the `vllm:` histogram (vLLM's, up to long prefills on a CPU).
const VLLM_TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
    160.0, 640.0, 2560.0,
];

/// Whole-request latency buckets (vLLM's).
const VLLM_E2E_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0,
    1920.0, 7680.0,
];

/// Token-count buckets: 1, 2, 5 and their powers of ten, as vLLM's, to 500,000.
fn token_buckets() -> Vec<f64> {
    (0..6).flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e))).collect()
}

/// The `vllm:*` names.
mod vllm {
    pub const WAITING: &str = "vllm:num_requests_waiting";
    pub const RUNNING: &str = "vllm:num_requests_running";
    pub const KV_USAGE: &str = "vllm:kv_cache_usage_perc";
    /// The name vLLM used for [`KV_USAGE`] before 0.10, still read by older pickers.
    pub const GPU_CACHE_USAGE: &str = "vllm:gpu_cache_usage_perc";
    pub const CACHE_CONFIG: &str = "vllm:cache_config_info";
    pub const PREFIX_QUERIES: &str = "vllm:prefix_cache_queries_total";
    pub const PREFIX_HITS: &str = "vllm:prefix_cache_hits_total";
    pub const TTFT: &str = "vllm:time_to_first_token_seconds";
    pub const E2E: &str = "vllm:e2e_request_latency_seconds";
    pub const PROMPT_TOKENS: &str = "vllm:request_prompt_tokens";
    pub const GENERATION_TOKENS: &str = "vllm:request_generation_tokens";
}

impl ServerMetrics {
    /// Metrics of a server that serves `model_name`.
    pub fn new(model_name: &str) -> Self {
        let full = |name: &str| Matcher::Full(name.to_string());
        let recorder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(full(vllm::TTFT), VLLM_TTFT_BUCKETS))
            .and_then(|b| b.set_buckets_for_metric(full(vllm::E2E), VLLM_E2E_BUCKETS))
            .and_then(|b| b.set_buckets_for_metric(full(vllm::PROMPT_TOKENS), &token_buckets()))
            .and_then(|b| b.set_buckets_for_metric(full(vllm::GENERATION_TOKENS), &token_buckets()))
            .expect("non-empty buckets")
            .build_recorder();
        let handle = recorder.handle();
        Self { recorder, handle, model_name: model_name.to_string() }
    }

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
        let model = self.model_name.clone();
        self.record(|| {
            histogram!("ponder_time_to_first_token_seconds").record(elapsed.as_secs_f64());
            histogram!(vllm::TTFT, "model_name" => model).record(elapsed.as_secs_f64());
        });
    }

    /// Time between two pieces of streamed text.
    pub fn inter_token_latency(&self, elapsed: Duration) {
        self.record(|| histogram!("ponder_inter_token_latency_seconds").record(elapsed.as_secs_f64()));
    }

    /// A request finished after `elapsed` (from its submission) with `usage`.
    pub fn finished(&self, usage: &Usage, thinking: &[ThinkingStats], elapsed: Duration) {
        let model = self.model_name.clone();
        self.record(|| {
            histogram!(vllm::E2E, "model_name" => model.clone()).record(elapsed.as_secs_f64());
            histogram!(vllm::PROMPT_TOKENS, "model_name" => model.clone()).record(usage.prompt_tokens as f64);
            histogram!(vllm::GENERATION_TOKENS, "model_name" => model).record(usage.completion_tokens as f64);
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
            let sum = |f: fn(&WorkerStats) -> u64| total(workers, f) as f64;
            gauge!("ponder_queue_length").set(sum(|w| w.queued as u64));
            gauge!("ponder_running_sequences").set(sum(|w| w.running as u64));
            gauge!("ponder_kv_blocks_used").set(sum(|w| w.kv_blocks_used as u64));
            gauge!("ponder_kv_blocks_total").set(sum(|w| w.kv_blocks_total as u64));
            gauge!("ponder_preemptions").set(sum(|w| w.preemptions));
            gauge!("ponder_engine_steps").set(sum(|w| w.steps));
            gauge!("ponder_workers_alive").set(sum(|w| u64::from(w.alive)));
            // Counted by the engine, so a request whose client went away counts too.
            counter!("ponder_generated_tokens_total").absolute(total(workers, |w| w.generated_tokens));
            self.render_vllm(workers);
        });
        self.handle.render()
    }

    /// The engine's figures under vLLM's names (inside [`Self::record`]). Queued and running
    /// count sequences (a request with `n` choices counts `n`), as vLLM's do.
    fn render_vllm(&self, workers: &[WorkerStats]) {
        let model = || self.model_name.clone();
        let sum = |f: fn(&WorkerStats) -> u64| total(workers, f);
        let (used, blocks) = (sum(|w| w.kv_blocks_used as u64), sum(|w| w.kv_blocks_total as u64));
        let usage = if blocks == 0 { 0.0 } else { used as f64 / blocks as f64 };
        gauge!(vllm::WAITING, "model_name" => model()).set(sum(|w| w.queued as u64) as f64);
        gauge!(vllm::RUNNING, "model_name" => model()).set(sum(|w| w.running as u64) as f64);
        gauge!(vllm::KV_USAGE, "model_name" => model()).set(usage);
        gauge!(vllm::GPU_CACHE_USAGE, "model_name" => model()).set(usage);
        // Published once the model has loaded (a label set never leaves the registry).
        if let Some(block_size) = workers.iter().map(|w| w.kv_block_size).find(|&b| b > 0) {
            let (block_size, blocks) = (block_size.to_string(), blocks.to_string());
            gauge!(vllm::CACHE_CONFIG, "block_size" => block_size, "num_gpu_blocks" => blocks).set(1.0);
        }
        counter!(vllm::PREFIX_QUERIES, "model_name" => model()).absolute(sum(|w| w.prefix_queried_tokens));
        counter!(vllm::PREFIX_HITS, "model_name" => model()).absolute(sum(|w| w.prefix_hit_tokens));
    }
}

/// `f` summed over the workers.
fn total(workers: &[WorkerStats], f: impl Fn(&WorkerStats) -> u64) -> u64 {
    workers.iter().map(f).sum()
}
