"""Pareto plots people can read: axes in words, unpruned reference line, points labelled by swept values."""
from __future__ import annotations

from rediprune.reports.pareto import pareto_front
from rediprune.reports.plots import NO_REFERENCE, axis_labels, point_label, reference, varying_keys, write_html, write_png


def _rows(with_none: bool) -> list[dict]:
    rows = []
    for i, (ratio, alpha, acc) in enumerate([(0.05, 0, 0.5), (0.1, 0, 0.7), (0.1, 1, 0.6), (0.15, 0.5, 0.8)]):
        rows.append({"trial": i, "status": "ok", "ratio": ratio, "alpha": alpha, "pruner": "rediprune",
                     "primary_metric": acc, "primary_metric_name": "acc", "tasks": "rediprune_demo_image",
                     "tflops": 10 * ratio + 1, "tflops_full": 11.0})
    if with_none:
        rows.append({"trial": 9, "status": "ok", "ratio": 0.15, "alpha": 0.5, "pruner": "none", "primary_metric": 0.97,
                     "primary_metric_name": "acc", "tasks": "rediprune_demo_image", "tflops": 11.0, "tflops_full": 11.0})
    return rows


def test_axes_reference_and_labels():
    rows = _rows(with_none=True)
    x, y = axis_labels(rows, "primary_metric", "tflops")
    assert x.startswith("TFLOPs (ratio to unpruned, %)") and y.startswith("acc on rediprune_demo_image")
    assert reference(rows, "primary_metric") == 0.97 and reference(_rows(False), "primary_metric") is None
    assert varying_keys(_rows(False)) == ["ratio", "alpha"]
    assert point_label(rows[2], ["ratio", "alpha"]) == "r=0.1 α=1"
    assert "pruner" in varying_keys(rows)


def test_plots_written_with_and_without_reference(tmp_path):
    for with_none in (True, False):
        rows = _rows(with_none)
        front = pareto_front(rows)
        png = write_png(rows, front, tmp_path / f"p{with_none}.png", objective="primary_metric", cost="tflops", title="t")
        html = write_html(rows, front, tmp_path / f"p{with_none}.html", objective="primary_metric", cost="tflops",
                          title="t")
        assert png.stat().st_size > 10_000
        text = html.read_text()
        assert "TFLOPs (ratio to unpruned, %)" in text and "r=0.05" in text
        assert (NO_REFERENCE in text) != with_none
