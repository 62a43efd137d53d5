"""edgecls-bench: latency (percentiles, cold start, end-to-end), throughput and accuracy per artifact."""

from .runner import BenchOptions, bench_artifact
from .stats import latency_stats

__all__ = ["BenchOptions", "bench_artifact", "latency_stats"]
