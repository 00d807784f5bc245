"""The evaluation report: one HTML page plus a PNG per evaluation, under the config's report_dir.

Written by the runner after the run (pipeline/local_runner.py), from MLMD and the artifacts; any
other orchestrator's run can be rendered the same way with `python -m pipeline.report`.
"""
from __future__ import annotations

import logging
import os

from components import interval_metrics
from models.grouped_regression import group_effects
from pipeline.eval_config import RMSE
from pipeline.report import chart, content, page
from pipeline.run_summary import RunSummary

log = logging.getLogger(__name__)

HTML_FILE = "report.html"
PNG_FILE = "rmse_by_group.png"
CATERPILLAR_PNG = "group_effects.png"


def report_subdir(report_dir: str, summary: RunSummary) -> str:
  """One folder per evaluation, so earlier runs' reports stay readable; named like the
  evaluation artifact's own folder (<pipeline root>/Evaluator/evaluation/<n>)."""
  return os.path.join(report_dir, f"evaluation_{os.path.basename(summary.evaluation_uri.rstrip('/'))}")


def write_groups_csv(c: content.ReportContent, path: str) -> str:
  """Every group's row (the page lists at most page.MAX_TABLE_GROUPS): sortable anywhere."""
  import csv  # pylint: disable=g-import-not-at-top
  metrics = ["example_count", RMSE, "mean_absolute_error", "mean_label", "mean_prediction",
             interval_metrics.COVERAGE, interval_metrics.WIDTH]
  with open(path, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["group", "train_rows", "gated", "failed"] + [f"candidate_{m}" for m in metrics]
               + [f"baseline_{RMSE}"])
    for g in c.groups:
      w.writerow([g.label, g.train_rows, g.gated, "; ".join(g.failed)]
                 + [g.candidate.get(m) for m in metrics] + [g.baseline.get(RMSE)])
  return path


def write_report(summary: RunSummary, report_dir: str, title: str) -> str:
  """Writes report.html + rmse_by_group.png + groups.csv (+ group_effects.png when the model
  has a group-effects table) for the summary's evaluation; returns the HTML path."""
  if summary.evaluation_uri is None:
    raise ValueError("no ModelEvaluation in this run's metadata: the Evaluator has not run, "
                     "so there is nothing to report")
  out_dir = report_subdir(report_dir, summary)
  os.makedirs(out_dir, exist_ok=True)
  c = content.build(summary, title)
  chart.rmse_by_group(c, os.path.join(out_dir, PNG_FILE))
  caterpillar = None
  if group_effects.has_effects(c.group_effects):
    caterpillar = group_effects.caterpillar_png(c.group_effects,
                                                os.path.join(out_dir, CATERPILLAR_PNG))
  write_groups_csv(c, os.path.join(out_dir, page.GROUPS_CSV))
  path = os.path.join(out_dir, HTML_FILE)
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(page.render(c, PNG_FILE, caterpillar and CATERPILLAR_PNG))
  os.replace(tmp, path)
  summary.report_path = path
  log.info("evaluation report: %s", path)
  return path
