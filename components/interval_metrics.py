"""TFMA metrics for the served prediction interval: coverage and mean width, per slice.

The exported model (models/grouped_regression/signatures.py) outputs `lower` and `upper` next to
`prediction`; TFMA keeps every model output in the predictions extract, so these metrics read the
two bounds from there (the ModelSpec's prediction_key still names the point prediction for RMSE).

  interval_coverage  share of rows whose label lies in [lower, upper] (nominal: model.interval)
  interval_width     mean of upper - lower, in label units (the transformed label, like RMSE)

Both are reported on every slice of the evaluated split (`test`). A model without interval
outputs (one exported before them, e.g. an old baseline) gets NaN, which the report shows as
undefined; with `evaluation.min_interval_coverage` set, pipeline/eval_config.py puts a lower
bound on the overall coverage, otherwise the metrics gate nothing.

Referenced from the EvalConfig by class name and this module, so TFMA imports it in every worker.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.utils import util

MODULE = __name__
COVERAGE = "interval_coverage"
WIDTH = "interval_width"
LOWER_KEY, UPPER_KEY = "lower", "upper"   # signatures.group_outputs


class _Accumulator:
  __slots__ = ("rows", "inside", "width")

  def __init__(self):
    self.rows, self.inside, self.width = 0, 0, 0.0


class _IntervalCombiner(beam.CombineFn):
  """Counts rows inside [lower, upper] and sums widths for one model."""

  def __init__(self, model_name: str, label_key: str,
               keys: Dict[str, metric_types.MetricKey]):
    self._model_name, self._label_key, self._keys = model_name, label_key, keys

  def create_accumulator(self) -> _Accumulator:
    return _Accumulator()

  def add_input(self, acc: _Accumulator, element: metric_types.StandardMetricInputs):
    preds = element.get_predictions(self._model_name or None)
    if not isinstance(preds, dict) or LOWER_KEY not in preds or UPPER_KEY not in preds:
      return acc                                 # a model without interval outputs
    label = element.get_labels(self._model_name or None)
    if isinstance(label, dict):
      label = util.get_by_keys(label, [self._label_key])
    y = np.asarray(label, np.float64).ravel()
    lo = np.asarray(preds[LOWER_KEY], np.float64).ravel()
    hi = np.asarray(preds[UPPER_KEY], np.float64).ravel()
    acc.rows += y.size
    acc.inside += int(np.sum((y >= lo) & (y <= hi)))
    acc.width += float(np.sum(hi - lo))
    return acc

  def merge_accumulators(self, accs: Iterable[_Accumulator]) -> _Accumulator:
    out = _Accumulator()
    for a in accs:
      out.rows, out.inside, out.width = out.rows + a.rows, out.inside + a.inside, out.width + a.width
    return out

  def extract_output(self, acc: _Accumulator) -> Dict[metric_types.MetricKey, float]:
    n = acc.rows
    values = {COVERAGE: acc.inside / n if n else float("nan"),
              WIDTH: acc.width / n if n else float("nan")}
    return {key: values[what] for what, key in self._keys.items()}


def _computations(what: str, name: str, eval_config, model_names: Optional[List[str]],
                  output_names: Optional[List[str]],
                  example_weighted: bool) -> metric_types.MetricComputations:
  specs = {s.name: s for s in (eval_config.model_specs if eval_config else [])}
  out = []
  for model_name in model_names or [""]:
    spec = specs.get(model_name) or (next(iter(specs.values())) if len(specs) == 1 else None)
    label_key = spec.label_key if spec is not None else ""
    for output_name in output_names or [""]:
      key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                   example_weighted=example_weighted)
      out.append(metric_types.MetricComputation(
          keys=[key], preprocessors=None,
          combiner=_IntervalCombiner(model_name, label_key, {what: key})))
  return out


# TFMA passes eval_config, model_names, ... by the argument names it finds (inspect), so the
# signatures are spelled out.
def _coverage(name: str = COVERAGE, eval_config=None, model_names=None, output_names=None,
              example_weighted: bool = False) -> metric_types.MetricComputations:
  return _computations(COVERAGE, name, eval_config, model_names, output_names, example_weighted)


def _width(name: str = WIDTH, eval_config=None, model_names=None, output_names=None,
           example_weighted: bool = False) -> metric_types.MetricComputations:
  return _computations(WIDTH, name, eval_config, model_names, output_names, example_weighted)


class IntervalCoverage(metric_types.Metric):
  """Share of rows with lower <= label <= upper (the model's `lower`/`upper` outputs)."""

  def __init__(self, name: str = COVERAGE):
    super().__init__(_coverage, name=name)


class IntervalWidth(metric_types.Metric):
  """Mean upper - lower, label units."""

  def __init__(self, name: str = WIDTH):
    super().__init__(_width, name=name)


metric_types.register_metric(IntervalCoverage)
metric_types.register_metric(IntervalWidth)
