"""The report's HTML and PNG from hand-made content: every group listed, failures highlighted,
small groups marked as not gated, text escaped. (test_blessing_pipeline.py checks the report of
real runs.)"""
import matplotlib.image

from models.grouped_regression import features as fk
from pipeline.eval_config import RMSE
from pipeline.report import chart, page
from pipeline.report.content import ReportContent, SliceRow


def _row(label, key, cand, base, **kw):
  m = lambda r: {"example_count": 20.0, RMSE: r, "mean_squared_error": r * r,  # noqa: E731
                 "mean_absolute_error": r / 2, "mean_label": 12.0, "mean_prediction": 12.1,
                 "calibration": 12.1 / 12.0}
  return SliceRow(label=label, key=key, candidate=m(cand), baseline=m(base) if base else {}, **kw)


def _content(with_baseline=True):
  fail = "group_id = 1: root_mean_squared_error worsened by +0.2000 vs the baseline (+100.0%)"
  base = (lambda x: x) if with_baseline else (lambda x: None)
  groups = [
      _row("group 0", ((fk.GROUP_KEY, "0"),), 0.1, base(0.2), gated=True, train_rows=80),
      _row("group 1", ((fk.GROUP_KEY, "1"),), 0.4, base(0.2), gated=True, train_rows=70,
           failed=[fail] if with_baseline else []),
      _row("group 2", ((fk.GROUP_KEY, "2"),), 0.9, base(0.1), gated=False, train_rows=9),
  ]
  return ReportContent(
      title="demo <&>", blessed=not with_baseline, pushed_path=None, evaluation_uri="eval/7",
      candidate_model_uri="model/5", baseline_model_uri="model/2" if with_baseline else None,
      rules=["overall RootMeanSquaredError <= 0.3"], failures=[fail] if with_baseline else [],
      overall=_row("overall", (), 0.25, base(0.2)), groups=groups,
      extra_slices={"Neighborhood": [_row("Old_Town", (("Neighborhood", "Old_Town"),), .2, .3)]},
      grouping={"uri": "grouping/3", "centroids": [[-93.6, 42.0], [-93.7, 42.1], [-93.65, 42.05]],
                "columns": ["Longitude", "Latitude"],
                "summary": {"mode": "kmeans", "features": ["Longitude", "Latitude"],
                            "num_groups": 3, "counts": {"train": [80, 70, 9], "eval": [20, 20, 3]},
                            "silhouette": 0.41, "inertia": 12.5}})


def test_page_lists_every_group_and_highlights_the_failure():
  html = page.render(_content(), "chart.png")
  for g in range(3):
    assert f"<td class=l>group {g}</td>" in html
  assert "<tr class='fail'><td class=l>group 1</td>" in html
  assert "<tr class='ungated'><td class=l>group 2</td>" in html
  assert "no (too few rows)" in html
  assert "<li>group_id = 1: root_mean_squared_error worsened" in html
  assert "NOT blessed" in html and "not pushed" in html
  assert '<img src="chart.png"' in html
  assert "demo &lt;&amp;&gt;" in html and "demo <&>" not in html
  assert "Old_Town" in html and "-93.6" in html
  assert "tfma.load_eval_result(&quot;eval/7&quot;)" in html


def test_first_run_page_has_no_baseline_and_no_failures():
  html = page.render(_content(with_baseline=False), "chart.png")
  assert "BLESSED" in html and "none (first run)" in html and "No threshold failed." in html


def test_chart_is_a_png_with_one_bar_pair_per_group(tmp_path):
  for with_baseline in (True, False):
    path = chart.rmse_by_group(_content(with_baseline), str(tmp_path / f"c{with_baseline}.png"))
    img = matplotlib.image.imread(path)
    assert img.shape[0] > 300 and img.shape[1] > 600
    # the failing group's bar is drawn in the failure colour
    red = ((img[..., 0] > 0.8) & (img[..., 1] < 0.25) & (img[..., 2] < 0.25)).sum()
    assert (red > 500) == with_baseline
