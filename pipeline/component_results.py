"""One phrase per output artifact for the console (pipeline/progress.py): what a user checks
after each component. Keyed by MLMD artifact type, read from the artifact itself."""
from __future__ import annotations

import os
import re
from typing import Callable, Dict

import tensorflow as tf
from tfx.types import artifact_utils

from components import anomaly_gate
from components import push_guard
from components.grouping import store as grouping_store


def _n(x) -> str:
  return f"{int(x):,}"


def _prop(a, name):
  return a.get_custom_property(name) if a.has_custom_property(name) else None


def _splits(a):
  return artifact_utils.decode_split_names(a.split_names)


def examples(a, progress) -> str:
  """Rows per split (ExampleGen; transformed examples are not recounted)."""
  if progress.out_types != {"Examples"}:  # Transform / Grouping outputs: not recounted
    return ""
  counts = []
  for split in _splits(a):
    files = tf.io.gfile.glob(os.path.join(a.uri, f"Split-{split}", "*"))
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP")
    counts.append(f"{split} {_n(ds.reduce(0, lambda n, _: n + 1).numpy())}")
  return "rows: " + ", ".join(counts) if counts else ""


def anomalies(a, progress) -> str:
  problems = anomaly_gate.read_anomalies(a)
  if not problems:
    return "no anomalies"
  return f"{len(problems)} ANOMALIES (first: {problems[0][:150]})"


def schema(a, progress) -> str:
  return "schema ready"


def grouping(a, progress) -> str:
  """k, group sizes (train rows), and how many categories share the fallback group and why."""
  s = grouping_store.load_summary(a.uri)
  counts = s.get("counts", {}).get("train", [])
  sizes = sorted(counts)
  text = f"{s.get('mode')}: {s.get('num_groups')} groups"
  if s.get("mode") == "kmeans" and len(s.get("k_candidates", [])) > 1:
    text += f" (k chosen from {s['k_candidates'][0]}..{s['k_candidates'][-1]})"
  if sizes:
    text += (f"; train rows per group min {_n(sizes[0])}, median {_n(sizes[len(sizes) // 2])}, "
             f"max {_n(sizes[-1])}")
  if s.get("mode") == "apriori":
    fb = s.get("fallback_group")
    rare = next((int(m.group(1)) for w in s.get("warnings", [])
                 for m in [re.match(r"(\d+) rare categor", w)] if m), 0)
    vocab = len(s.get("vocabulary", []))
    fb_rows = counts[fb] if fb is not None and fb < len(counts) else 0
    text += (f"; {_n(rare)} of {_n(rare + vocab)} categories (+ missing/unseen values) share "
             f"the fallback group: fewer than min_count={s.get('min_count')} train rows each"
             f" ({_n(fb_rows)} rows)")
    if rare > vocab:
      text += ". MOST CATEGORIES ARE IN THE FALLBACK: lower grouping.min_count"
  return text


def model(a, progress) -> str:
  """The candidate kept and its eval RMSE (label units, after any head refit), from the model's
  own model_choice.json (so a cached Trainer reports it too), with each candidate's RMSE when
  there were several (`auto`) and the epochs each network trained when this run trained them."""
  from models.grouped_regression import trainer  # pylint: disable=g-import-not-at-top
  from tfx.utils import path_utils  # pylint: disable=g-import-not-at-top
  choice = trainer.read_choice(path_utils.serving_model_path(a.uri)) if a is not None else None
  if not choice:
    return "trained"
  rmse = {k: v["eval_rmse"] for k, v in choice["candidates"].items()}
  seen = progress.candidates                       # name -> (epochs, refit), this run only
  epochs = lambda name: f" ({seen[name][0]} epochs)" if seen.get(name, (0,))[0] else ""
  kept = choice["chosen"]
  if len(rmse) == 1:
    refit = seen.get(kept, (0, None))[1]
    return (f"{kept}{epochs(kept)}, eval RMSE {rmse[kept]:.4f}"
            + (f" after head refit ({refit[0]})" if refit else ""))
  others = ", ".join(f"{name} {r:.4f}{epochs(name)}" for name, r in rmse.items())
  return f"kept {kept}, eval RMSE {rmse[kept]:.4f} (of {others})"


def blessing(a, progress) -> str:
  blessed = _prop(a, "blessed")
  if blessed:
    return "BLESSED"
  return "NOT blessed"


def evaluation(a, progress) -> str:
  from pipeline import eval_results  # pylint: disable=g-import-not-at-top
  _, failures = eval_results.load_failures(a.uri)
  if not failures:
    return ""
  shown = "; ".join(eval_results.slice_label(f.slice) for f in failures[:5])
  more = f" and {len(failures) - 5} more" if len(failures) > 5 else ""
  return f"failing slices: {shown}{more}"


def pushed(a, progress) -> str:
  if _prop(a, "pushed"):
    return f"pushed version {_prop(a, 'pushed_version')}"
  unchanged = _prop(a, push_guard.UNCHANGED_PROPERTY)
  if unchanged:   # blessed, but identical to the version already serving (GuardedPusher)
    return f"nothing pushed: unchanged (same as version {unchanged})"
  return "nothing pushed (not blessed)"


DESCRIBERS: Dict[str, Callable] = {
    "Examples": examples, "ExampleAnomalies": anomalies, "Schema": schema,
    "grouped_regression.GroupingModel": grouping, "Model": model, "ModelBlessing": blessing,
    "ModelEvaluation": evaluation, "PushedModel": pushed,
}
