"""Writes a starter config for your own CSV from its header and values:
`make init CSV=path/to/data.csv NAME=mydata` -> configs/mydata.yaml.

It proposes a label (the last numeric column unless `--label` names one), the features (every
other usable column), an a-priori grouping on the categorical column whose categories are best
populated (else K-Means on numeric columns), scales the RMSE bound to the label's spread, and
comments every field. Review it, then `make run CONFIG=configs/<name>.yaml`.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import List, Optional

import pandas as pd

from pipeline.config import RESERVED_COLUMNS, REPO_ROOT, from_dict

_MAX_CATEGORIES = 200      # a string column with more distinct values is an id, not a feature


def _q(v) -> str:
  """A YAML scalar that reads back as exactly this string (JSON strings are valid YAML)."""
  return json.dumps(str(v))


def _qlist(vs: List[str]) -> str:
  return "[" + ", ".join(_q(v) for v in vs) + "]"


def propose(df: pd.DataFrame, label: Optional[str] = None):
  """(label, numeric, categorical, grouping column or None, k-means features)."""
  numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])
             and df[c].nunique() > 1]
  categorical = [c for c in df.columns
                 if c not in numeric and 1 < df[c].nunique() <= _MAX_CATEGORIES]
  if label is None:
    if not numeric:
      raise SystemExit("no numeric column to predict: pass --label")
    label = numeric[-1]
  if label not in df.columns:
    raise SystemExit(f"--label {label!r} is not a column; columns: {list(df.columns)}")
  numeric = [c for c in numeric if c != label and c not in RESERVED_COLUMNS]
  categorical = [c for c in categorical if c != label and c not in RESERVED_COLUMNS]
  # grouping: the categorical column with the most categories that still have >= 5 rows each
  best, best_n = None, 1
  for c in categorical:
    populated = int((df[c].value_counts() >= 5).sum())
    if populated > best_n:
      best, best_n = c, populated
  return label, numeric, categorical, best, numeric[:2]


def render(name: str, csv: str, df: pd.DataFrame, label: Optional[str] = None) -> str:
  label, numeric, categorical, group_col, km = propose(df, label)
  y = pd.to_numeric(df[label], errors="coerce")
  bound = float(y.std()) if y.notna().sum() > 1 else 1.0   # predicting the mean scores ~ std
  features_cat = [c for c in categorical if c != group_col]
  mode = "apriori" if group_col else "kmeans"
  grouping = (f"  mode: apriori                        # one group per category of `column`\n"
              f"  column: {_q(group_col)}          # the grouping column (proposed: the "
              f"categorical column with the most categories of >= 5 rows)\n"
              f"  min_count: 5                         # categories with fewer train rows share "
              f"the fallback group\n" if group_col else
              f"  mode: kmeans                         # groups found by K-Means\n"
              f"  features: {_qlist(km)}   # numeric columns K-Means clusters on\n"
              f"  k: [2, 8]                            # an int, or [min, max]: chosen by "
              f"silhouette\n")
  return f"""# Starter config for {os.path.basename(csv)} from `make init` (pipeline/init_config.py).
# Review every field, then: make run CONFIG=configs/{name}.yaml
name: {name}                             # names the CSV copy, the outputs and the pipeline

dataset:
  source: {_q('csv:' + csv)}   # your CSV; `make run` copies the columns below to csv_dir
  csv_dir: {_q('data/' + name)}          # CsvExampleGen input: its own folder per dataset
  label: {_q(label)}                 # the column to predict (already in the units you want)
  numeric_features: {_qlist(numeric)}
  categorical_features: {_qlist(features_cat)}
  schema:                              # empty: SchemaGen infers one (see README, step 2)
  split_sizes: {{train: 70, eval: 15, test: 15}}   # percent: train fits, eval chooses, test judges

grouping:
{grouping}
model:
  variant: auto                        # auto: eval picks multihead (z-score or binned) or boosted

evaluation:
  rmse_upper_bound: {bound:.6g}              # absolute gate on overall RMSE, in label units: the
                                       # label's std ({bound:.4g}), i.e. no worse than the mean
  overall_rmse_tolerance: 0.05         # relative worsening allowed vs the last blessed model
  group_rmse_tolerance: 0.15           # the same, per group
  min_group_examples: 15               # smaller test groups are reported, not gated
  extra_slices: []                     # other columns to report metrics by
  # min_interval_coverage: 0.85        # optional: not blessed below this test coverage of the
                                       # served interval (model.interval); else report-only

serving:
  model_name: {name}                   # TF Serving model name

outputs:
  root: outputs/{name}                 # pipeline root, metadata, logs and pushed models

beam:
  args: []                             # Beam DirectRunner in_memory (docs/orchestration.md)
"""


def write(csv: str, name: str, out: Optional[str] = None, label: Optional[str] = None,
          force: bool = False) -> str:
  """Writes configs/<name>.yaml (or `out`) and checks that it loads; returns the path."""
  import yaml  # pylint: disable=g-import-not-at-top
  df = pd.read_csv(csv)
  out = out or os.path.join(REPO_ROOT, "configs", f"{name}.yaml")
  if os.path.exists(out) and not force:
    raise SystemExit(f"{out} exists; pass --force to overwrite")
  text = render(name, csv, df, label)
  from_dict(yaml.safe_load(text), source_path=out)   # the starter config must validate
  os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
  with open(out, "w", encoding="utf-8") as f:
    f.write(text)
  return out


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--csv", required=True)
  p.add_argument("--name", required=True)
  p.add_argument("--label", help="the column to predict (default: the last numeric column)")
  p.add_argument("--out", help="config path (default: configs/<name>.yaml)")
  p.add_argument("--force", action="store_true")
  a = p.parse_args()
  path = write(a.csv, a.name, a.out, a.label, a.force)
  print(f"wrote {path}\nnext: review it, then make run CONFIG={os.path.relpath(path)}")


if __name__ == "__main__":
  main()
