"""Prometheus metrics for GET /metrics (names follow vLLM's, with the ``cadence:`` prefix).

Load figures (running / waiting sequences, KV-cache blocks, preemptions) are read from the
async engine at scrape time; per-request figures (token counters, TTFT, inter-token and
end-to-end latency histograms) are recorded by the async engine as outputs arrive.
Every series carries a ``model_name`` label. One registry per server (not the global one).
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from cadence.engine.async_llm_engine import AsyncLLMEngine

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# No "*_created" timestamp series next to every counter and histogram (as vLLM does).
disable_created_metrics()

_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0)
_TTFT_BUCKETS += (2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0)
_ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0)
_ITL_BUCKETS += (7.5, 10.0, 20.0, 40.0, 80.0)
_E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0)
_E2E_BUCKETS += (60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)


class _EngineLoadCollector(Collector):
    """Gauges (and the preemption counter) from ``AsyncLLMEngine.stats()`` per scrape."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.engine: AsyncLLMEngine | None = None

    def collect(self):
        if self.engine is None:
            return
        stats = self.engine.stats()
        labels = [self.model_name]
        gauges = (
            ("cadence:num_requests_running", "Sequences being computed.", stats.num_running),
            (
                "cadence:num_requests_waiting",
                "Sequences waiting for a slot (queued or in the scheduler).",
                stats.num_waiting,
            ),
            (
                "cadence:kv_cache_usage_perc",
                "Fraction of KV-cache blocks in use (0 = all free, 1 = full).",
                stats.kv_cache_usage,
            ),
            ("cadence:kv_cache_free_blocks", "Free KV-cache blocks.", stats.num_free_blocks),
            ("cadence:kv_cache_total_blocks", "KV-cache blocks in all.", stats.num_total_blocks),
        )
        for name, documentation, value in gauges:
            family = GaugeMetricFamily(name, documentation, labels=["model_name"])
            family.add_metric(labels, value)
            yield family
        preemptions = CounterMetricFamily(
            "cadence:num_preemptions", "Preemptions by the scheduler.", labels=["model_name"]
        )
        preemptions.add_metric(labels, stats.num_preemptions)
        yield preemptions
        counters = (
            (
                "cadence:prefix_cache_queries",
                "Prefix cache: tokens looked up when requests were admitted.",
                stats.prefix_cache_queries,
            ),
            (
                "cadence:prefix_cache_hits",
                "Prefix cache: of the tokens looked up, those found cached.",
                stats.prefix_cache_hits,
            ),
        )
        for name, documentation, value in counters:
            family = CounterMetricFamily(name, documentation, labels=["model_name"])
            family.add_metric(labels, value)
            yield family


class ServerMetrics:
    """The registry and the request-level series; implements ``RequestMetricsSink``."""

    def __init__(self, model_name: str) -> None:
        self.registry = CollectorRegistry()
        self._load = _EngineLoadCollector(model_name)
        self.registry.register(self._load)
        labels = ["model_name"]

        def counter(name: str, documentation: str, extra: tuple[str, ...] = ()) -> Counter:
            return Counter(name, documentation, [*labels, *extra], registry=self.registry)

        def histogram(name: str, documentation: str, buckets) -> Histogram:
            return Histogram(
                name, documentation, labels, buckets=buckets, registry=self.registry
            ).labels(model_name)

        self._prompt_tokens = counter("cadence:prompt_tokens", "Prompt tokens processed.").labels(
            model_name
        )
        self._generation_tokens = counter("cadence:generation_tokens", "Tokens generated.").labels(
            model_name
        )
        self._request_success = counter(
            "cadence:request_success", "Finished sequences by finish reason.", ("finished_reason",)
        )
        self._model_name = model_name
        self._ttft = histogram(
            "cadence:time_to_first_token_seconds",
            "Time from arrival to the first generated token.",
            _TTFT_BUCKETS,
        )
        self._itl = histogram(
            "cadence:inter_token_latency_seconds",
            "Time between successive outputs of a request.",
            _ITL_BUCKETS,
        )
        self._e2e = histogram(
            "cadence:e2e_request_latency_seconds",
            "Time from arrival to the last token.",
            _E2E_BUCKETS,
        )

    def attach(self, engine: AsyncLLMEngine) -> None:
        """The engine whose load the gauges report."""
        self._load.engine = engine

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # RequestMetricsSink
    def record_prompt(self, num_prompt_tokens: int) -> None:
        self._prompt_tokens.inc(num_prompt_tokens)

    def record_first_token(self, seconds: float) -> None:
        self._ttft.observe(seconds)

    def record_inter_token(self, seconds: float) -> None:
        self._itl.observe(seconds)

    def record_generated(self, num_tokens: int) -> None:
        self._generation_tokens.inc(num_tokens)

    def record_finished(self, seconds: float, finish_reasons: list[str]) -> None:
        self._e2e.observe(seconds)
        for reason in finish_reasons:
            self._request_success.labels(self._model_name, reason).inc()
