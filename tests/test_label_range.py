"""The label range: derived from train quantiles, robust to a few absurd rows, and an absurd
label becomes a TFDV anomaly against both the curated and an inferred schema."""
import numpy as np
import pandas as pd
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2

from components import label_range
from pipeline.config import load_config


def _stats(y):
  return tfdv.generate_statistics_from_dataframe(pd.DataFrame({"y": y, "x": np.arange(len(y))}))


def test_range_from_train_statistics_ignores_one_percent_absurd_rows_and_flags_them():
  rng = np.random.default_rng(0)
  clean = rng.normal(12.0, 0.4, 2000)
  absurd = clean.copy()
  absurd[::100] = 1e9
  lo, hi = label_range.range_from_statistics(_stats(absurd), "y")
  assert clean.min() > lo and clean.max() < hi and hi < 20
  schema = tfdv.infer_schema(_stats(clean))
  label_range.set_label_domain(schema, "y", lo, hi)
  assert tfdv.validate_statistics(_stats(clean), schema).anomaly_info == {}
  anomalies = tfdv.validate_statistics(_stats(absurd), schema).anomaly_info
  assert list(anomalies) == ["y"]
  assert "Unexpectedly high value: 1e+09" in anomalies["y"].description


def test_curated_ames_schema_bounds_the_label():
  cfg = load_config("configs/ames.yaml")
  schema = tfdv.load_schema_text(cfg.schema_path)
  f = tfdv.get_feature(schema, cfg.dataset.label)
  assert f.HasField("float_domain") and f.float_domain.min < 9.4 and f.float_domain.max > 13.6
  assert isinstance(schema, schema_pb2.Schema)


def test_inferred_schema_gets_the_label_range_from_the_train_split(tmp_path):
  """LabelRangeSchemaGen's executor (stock inference + label float_domain) on a real
  ExampleStatistics artifact layout."""
  import os
  from tfx.types import standard_artifacts, artifact_utils, standard_component_specs as specs
  from tfx.utils import io_utils, json_utils
  rng = np.random.default_rng(1)
  stats = standard_artifacts.ExampleStatistics()
  stats.uri = str(tmp_path / "stats")
  stats.split_names = artifact_utils.encode_split_names(["train", "eval"])
  for split, y in (("train", rng.normal(5, 1, 1000)), ("eval", rng.normal(5, 1, 300))):
    os.makedirs(os.path.join(stats.uri, f"Split-{split}"))
    with open(os.path.join(stats.uri, f"Split-{split}", "FeatureStats.pb"), "wb") as f:
      f.write(_stats(y).SerializeToString())
  schema = standard_artifacts.Schema()
  schema.uri = str(tmp_path / "schema")
  os.makedirs(schema.uri)
  label_range.Executor().Do(
      {specs.STATISTICS_KEY: [stats]}, {specs.SCHEMA_KEY: [schema]},
      {specs.INFER_FEATURE_SHAPE_KEY: 1, specs.EXCLUDE_SPLITS_KEY: json_utils.dumps([]),
       label_range.LABEL_KEY: "y"})
  out = io_utils.parse_pbtxt_file(os.path.join(schema.uri, "schema.pbtxt"), schema_pb2.Schema())
  d = tfdv.get_feature(out, "y").float_domain
  assert -5 < d.min < -2.5 and 12.5 < d.max < 15   # deciles ~3.7 / 6.3, widened 3x their gap
  assert not tfdv.get_feature(out, "x").HasField("float_domain")
