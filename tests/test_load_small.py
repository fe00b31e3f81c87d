"""The load test at CI size: ten annotators against a real `assay serve` on PostgreSQL, no think
time, a third of the labels sent twice (at once, or one after the other). Only correctness is
asserted (no latency): nothing assigned twice, nothing lost, nothing stored twice, no errors."""

from __future__ import annotations

from bench.load import Options, run


def test_small_load_keeps_queue_and_keys_intact():
    result = run(
        Options(annotators=10, duration_s=20, think_s=(0.0, 0.05), items=3000, retry_fraction=0.3)
    )
    assert result["errors"] == {}
    assert result["stored"] > 50, result  # the annotators got through real work
    assert result["retries"] > 0 and result["retries_ok"] == result["retries"], result
    assert result["double_assigned"] == 0, result
    assert result["lost"] == 0, result
    assert result["duplicated"] == 0, result


def test_more_annotators_than_database_connections_get_no_errors():
    """80 annotators without think time against one server process (30 pooled connections):
    without admission control the pool deadlocks against the thread pool and answers 500."""
    result = run(
        Options(
            annotators=80,
            duration_s=10,
            think_s=(0.0, 0.0),
            items=3000,
            retry_fraction=0.0,
            web_workers=1,
        )
    )
    assert result["errors"] == {}
    assert result["double_assigned"] == 0 and result["lost"] == 0, result
