"""Benchmark harness: ``python -m bench [--quick] [--only seq40,loop] [--write docs/benchmarks.md]``.

Every scenario writes its playbooks as YAML text into a temporary directory, runs them and
measures with the engine's own event timestamps (``Event.created_at``), reporting the median
and p95 over repeated runs.
"""
