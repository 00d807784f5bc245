"""The group-effects table (lme4's ranef + VarCorr, one row per group) and its rendering.

`table(...)` takes plain per-group arrays, so any variant with a posterior over group shifts
(the multihead's EB refit, a boosted model's random intercepts) can fill it; `write` puts
group_effects.csv / .json in a directory; `caterpillar_png` / `html_table` render it for the
evaluation report.
"""
from __future__ import annotations

import csv
import html
import io
import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

DIR = "group_effects"            # inside the Model artifact, next to Format-Serving
CSV_FILE = "group_effects.csv"
JSON_FILE = "group_effects.json"
COLUMNS = ("group_id", "group_label", "is_fallback", "train_rows", "intercept_shift",
           "intercept_sd", "slope_shift_norm", "shrinkage", "residual_sd", "interval_sd")


def table(labels: Sequence[str], rows: np.ndarray, intercept_shift: np.ndarray,
          intercept_sd: np.ndarray, slope_shift_norm: np.ndarray, shrinkage: np.ndarray,
          residual_sd: np.ndarray, interval_sd: np.ndarray,
          fallback_group: Optional[int] = None) -> List[Dict]:
  """One dict per group (label units; shrinkage 0 = fully pooled, 1 = its own estimate)."""
  out = []
  for g, label in enumerate(labels):
    out.append({"group_id": g, "group_label": str(label), "is_fallback": g == fallback_group,
                "train_rows": int(rows[g]), "intercept_shift": float(intercept_shift[g]),
                "intercept_sd": float(intercept_sd[g]),
                "slope_shift_norm": float(slope_shift_norm[g]), "shrinkage": float(shrinkage[g]),
                "residual_sd": float(residual_sd[g]), "interval_sd": float(interval_sd[g])})
  return out


def write(rows: List[Dict], directory: str) -> str:
  """Writes CSV + JSON into `directory` (tf.io.gfile: local or remote); returns the CSV path."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.io.gfile.makedirs(directory)
  buf = io.StringIO()
  w = csv.DictWriter(buf, fieldnames=list(COLUMNS))
  w.writeheader()
  w.writerows(rows)
  path = os.path.join(directory, CSV_FILE)
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(buf.getvalue())
  with tf.io.gfile.GFile(os.path.join(directory, JSON_FILE), "w") as f:
    json.dump({"columns": list(COLUMNS), "groups": rows}, f, indent=1)
  return path


def model_dir(model_uri: str) -> str:
  """<Model artifact>/group_effects, where the Trainer writes the table."""
  return os.path.join(model_uri, DIR)


def read(directory: str) -> List[Dict]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with tf.io.gfile.GFile(os.path.join(directory, JSON_FILE)) as f:
    return json.load(f)["groups"]


def has_effects(rows: List[Dict]) -> bool:
  """False for a variant without group heads (its shifts are NaN): nothing to plot."""
  return any(np.isfinite(d["intercept_shift"]) for d in rows)


def caterpillar_png(rows: List[Dict], path: str) -> str:
  """Intercept shift +- 2 posterior sd per group, sorted: the mixed-model caterpillar plot."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  r = sorted(rows, key=lambda d: d["intercept_shift"])
  y = np.arange(len(r))
  fig, ax = plt.subplots(figsize=(6, max(2.5, 0.12 * len(r) + 1)))
  ax.errorbar([d["intercept_shift"] for d in r], y,
              xerr=[2 * d["intercept_sd"] for d in r], fmt="o", ms=3, lw=1)
  ax.axvline(0, color="grey", lw=0.8)
  if len(r) <= 40:
    ax.set_yticks(y, [d["group_label"] for d in r], fontsize=7)
  ax.set_xlabel("intercept shift ± 2 sd (label units)")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def html_table(rows: List[Dict], max_rows: int = 50) -> str:
  """The largest groups first, at most max_rows."""
  r = sorted(rows, key=lambda d: -d["train_rows"])[:max_rows]
  head = "".join(f"<th>{c}</th>" for c in COLUMNS)
  fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))  # noqa: E731
  body = "".join("<tr>" + "".join(f"<td>{fmt(d[c])}</td>" for c in COLUMNS) + "</tr>" for d in r)
  return f"<table><tr>{head}</tr>{body}</table>"
