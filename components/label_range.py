"""A label range for the schema, so absurd label values stop the run at ExampleValidator.

SchemaGen infers no value ranges, so without this a label of 1e9 on 1% of the rows passes
validation and only shows up as a failed RMSE bound after training. The rule, used for the
curated schemas and by LabelRangeSchemaGen for an inferred one: take the label's 10th and 90th
percentiles on the train split (robust to a few absurd rows) and widen them by MARGIN times their
distance on each side (for a normal label about +-9 standard deviations). The range is written
as the label's `float_domain` in the schema, where a user can edit it: widen min/max there for
a legitimate shift (or, without a curated schema, save the inferred one and edit it).
"""
from __future__ import annotations

import logging
import math
import os
from typing import Optional, Tuple

from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx import types
from tfx.components.schema_gen import executor as schema_gen_executor
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import io_utils, json_utils
from tfx.v1.components import SchemaGen

from components import code_version

log = logging.getLogger(__name__)
MARGIN = 3.0
QUANTILES = (0.1, 0.9)


def label_range(q_lo: float, q_hi: float, margin: float = MARGIN) -> Tuple[float, float]:
  """[q_lo - margin*w, q_hi + margin*w], w = q_hi - q_lo (at least 1e-6 * scale)."""
  w = max(q_hi - q_lo, 1e-6 * max(abs(q_lo), abs(q_hi), 1.0))
  return q_lo - margin * w, q_hi + margin * w


def _quantile(hist: statistics_pb2.Histogram, q: float) -> float:
  """The q-quantile from TFDV's equal-count QUANTILES histogram (bucket boundaries)."""
  total = sum(b.sample_count for b in hist.buckets)
  acc = 0.0
  for b in hist.buckets:
    if b.sample_count and acc + b.sample_count >= q * total - 1e-9:
      frac = (q * total - acc) / b.sample_count
      return b.low_value + min(max(frac, 0.0), 1.0) * (b.high_value - b.low_value)
    acc += b.sample_count
  return hist.buckets[-1].high_value


def range_from_statistics(stats: statistics_pb2.DatasetFeatureStatisticsList,
                          label: str) -> Optional[Tuple[float, float]]:
  for ds in stats.datasets:
    for f in ds.features:
      name = f.path.step[-1] if f.path.step else f.name
      if name != label or not f.HasField("num_stats"):
        continue
      for h in f.num_stats.histograms:
        if h.type == statistics_pb2.Histogram.QUANTILES and h.buckets:
          return label_range(_quantile(h, QUANTILES[0]), _quantile(h, QUANTILES[1]))
  return None


def set_label_domain(schema: schema_pb2.Schema, label: str, lo: float, hi: float) -> None:
  """Rounds outward to 3 significant digits of the width, so the file stays readable."""
  step = 10 ** math.floor(math.log10(max(hi - lo, 1e-12)) - 2)
  for f in schema.feature:
    if f.name == label:
      f.float_domain.min = math.floor(lo / step) * step
      f.float_domain.max = math.ceil(hi / step) * step
      return
  raise ValueError(f"label '{label}' is not in the schema")


LABEL_KEY = "label"


class LabelRangeSchemaGenSpec(standard_component_specs.SchemaGenSpec):
  PARAMETERS = {**standard_component_specs.SchemaGenSpec.PARAMETERS,
                LABEL_KEY: ExecutionParameter(type=str), **code_version.PARAMETER}


class Executor(schema_gen_executor.Executor):
  """Stock schema inference, then the label's float_domain from the train split's quantiles."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    super().Do(input_dict, output_dict, exec_properties)
    label = exec_properties[LABEL_KEY]
    stats_artifact = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.STATISTICS_KEY])
    stats = stats_artifact_utils.load_statistics(stats_artifact, "train").proto()
    rng = range_from_statistics(stats, label)
    if rng is None:
      raise ValueError(f"no numeric statistics for label '{label}' in the train split")
    path = os.path.join(artifact_utils.get_single_uri(
        output_dict[standard_component_specs.SCHEMA_KEY]), schema_gen_executor.DEFAULT_FILE_NAME)
    schema = io_utils.parse_pbtxt_file(path, schema_pb2.Schema())
    set_label_domain(schema, label, *rng)
    io_utils.write_pbtxt_file(path, schema)
    log.info("label '%s' range [%g, %g] from the train split's deciles", label, *rng)


class LabelRangeSchemaGen(SchemaGen):
  """SchemaGen whose inferred schema bounds the label (float_domain), see the module doc."""
  SPEC_CLASS = LabelRangeSchemaGenSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  # pylint: disable-next=super-init-not-called
  def __init__(self, statistics: types.BaseChannel, label: str):
    spec = LabelRangeSchemaGenSpec(
        statistics=statistics, infer_feature_shape=1, exclude_splits=json_utils.dumps([]),
        label=label, code_version=code_version.fingerprint(__name__),
        schema=types.Channel(type=standard_artifacts.Schema))
    base_component.BaseComponent.__init__(self, spec=spec)  # pylint: disable=non-parent-init-called
