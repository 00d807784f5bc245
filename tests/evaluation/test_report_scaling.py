"""The report with 2,000 groups stays small and readable: bounded image width, a page under
1 MB listing the worst and failing groups, every group in the CSV, no NaN on the page."""
import csv
import os

import matplotlib.image
import numpy as np

from models.grouped_regression import features as fk
from pipeline.eval_config import RMSE
from pipeline.report import chart, page, write_groups_csv
from pipeline.report.content import ReportContent, SliceRow

N = 2000


def _metrics(r, n):
  return {"example_count": float(n), RMSE: r, "mean_squared_error": r * r,
          "mean_absolute_error": r / 2, "mean_label": 0.0 if n == 1 else 12.0,
          "mean_prediction": 12.1, "calibration": float("nan") if n == 1 else 1.01}


def _content():
  rng = np.random.default_rng(0)
  sizes = np.maximum(1, (200 / np.arange(1, N + 1) ** 0.8).astype(int))
  groups = []
  for i, n in enumerate(sizes):
    r = float(0.1 + 0.5 / np.sqrt(n) * rng.uniform(0.5, 1.5))
    groups.append(SliceRow(label=f"group {i}", key=((fk.GROUP_KEY, str(i)),),
                           candidate=_metrics(r, n), baseline={}, gated=n >= 15,
                           failed=["worse than baseline"] if i in (3, 1500) else [],
                           train_rows=int(4 * n)))
  return ReportContent(
      title="many", blessed=False, pushed_path=None, evaluation_uri="eval/1",
      candidate_model_uri="model/1", baseline_model_uri=None, rules=[], failures=["x"],
      overall=SliceRow(label="overall", key=(), candidate=_metrics(0.2, 5000), baseline={}),
      groups=groups, extra_slices={},
      grouping={"uri": "grouping/1", "vocabulary": [f"county {i}" for i in range(N - 1)],
                "summary": {"mode": "apriori", "features": ["county"], "num_groups": N,
                            "counts": {"train": [int(4 * n) for n in sizes]},
                            "warnings": ["split 'eval': group(s) " + str(list(range(900)))]}})


def test_two_thousand_groups_make_a_small_page_and_a_bounded_chart(tmp_path):
  c = _content()
  png = chart.rmse_by_group(c, str(tmp_path / "chart.png"))
  height, width = matplotlib.image.imread(png).shape[:2]
  assert width < 4000 and height < 4000
  html = page.render(c, "chart.png")
  assert len(html.encode()) + os.path.getsize(png) < 1_000_000
  assert "nan" not in html.lower().replace("nanc", "")  # no NaN reaches the page
  assert "undefined (" not in html or "no rows" in html
  assert "<td class=l>group 3</td>" in html and "<td class=l>group 1500</td>" in html  # failing
  assert f"{N} groups" in html and page.GROUPS_CSV in html
  assert html.count("<tr") < 300
  assert max(len(line) for line in html.splitlines()) < 20_000
  rows = list(csv.reader(open(write_groups_csv(c, str(tmp_path / "groups.csv")))))
  assert len(rows) == N + 1 and rows[1][0] == "group 0"


def test_few_groups_keep_one_bar_each_under_the_width_cap(tmp_path):
  c = _content()
  c.groups = c.groups[:chart.MAX_BARS]
  png = chart.rmse_by_group(c, str(tmp_path / "chart.png"))
  assert matplotlib.image.imread(png).shape[1] < 4000
