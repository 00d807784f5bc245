"""The evaluation report: one HTML page plus a PNG per evaluation, under the config's report_dir.

Written by the runner after the run (pipeline/local_runner.py), from MLMD and the artifacts; any
other orchestrator's run can be rendered the same way with `python -m pipeline.report`.
"""
from __future__ import annotations

import logging
import os

from pipeline.report import chart, content, page
from pipeline.run_summary import RunSummary

log = logging.getLogger(__name__)

HTML_FILE = "report.html"
PNG_FILE = "rmse_by_group.png"


def report_subdir(report_dir: str, summary: RunSummary) -> str:
  """One folder per evaluation, so earlier runs' reports stay readable; named like the
  evaluation artifact's own folder (<pipeline root>/Evaluator/evaluation/<n>)."""
  return os.path.join(report_dir, f"evaluation_{os.path.basename(summary.evaluation_uri.rstrip('/'))}")


def write_report(summary: RunSummary, report_dir: str, title: str) -> str:
  """Writes report.html + rmse_by_group.png for the summary's evaluation; returns the HTML path."""
  if summary.evaluation_uri is None:
    raise ValueError("no ModelEvaluation in this run's metadata: the Evaluator has not run, "
                     "so there is nothing to report")
  out_dir = report_subdir(report_dir, summary)
  os.makedirs(out_dir, exist_ok=True)
  c = content.build(summary, title)
  chart.rmse_by_group(c, os.path.join(out_dir, PNG_FILE))
  path = os.path.join(out_dir, HTML_FILE)
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(page.render(c, PNG_FILE))
  os.replace(tmp, path)
  summary.report_path = path
  log.info("evaluation report: %s", path)
  return path
