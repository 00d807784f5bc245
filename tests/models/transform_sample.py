"""A real Transform output for model tests, without running the pipeline.

A few hundred Ames rows -> raw tf.Examples -> grouping fitted with components.grouping.fitting ->
tft_beam analysis with the pipeline's preprocessing_fn and curated schema -> transformed
tf.Examples on disk + the transform graph: what GroupedTransform hands the Trainer.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Dict, List, Optional

import apache_beam as beam
import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from apache_beam.options.pipeline_options import PipelineOptions
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components.grouping import fitting, store
from data import prepare
from models.grouped_regression import preprocessing
from pipeline.config import PipelineConfig, load_config


@dataclasses.dataclass
class TransformSample:
  cfg: PipelineConfig
  frame: pd.DataFrame              # raw rows (train first, then eval)
  n_train: int
  schema: schema_pb2.Schema        # raw schema (the curated one)
  grouping_uri: str
  transform_output: str
  train_files: List[str]
  eval_files: List[str]
  numeric_bins: int = 0

  def custom_config(self, **model) -> Dict:
    d = self.cfg.dataset
    return {"numeric_features": list(d.numeric_features),
            "categorical_features": list(d.categorical_features), "label": d.label,
            "label_transform": d.label_transform,
            "grouping_uri": self.grouping_uri, "numeric_bins": self.numeric_bins,
            "model": {**vars(self.cfg.model), "numeric_bins": self.numeric_bins, **model}}

  def data_accessor(self) -> tfx.components.DataAccessor:
    def factory(file_pattern, options, schema):
      return tfxio.TFExampleRecord(file_pattern=file_pattern, schema=schema
                                   ).TensorFlowDataset(options)
    return tfx.components.DataAccessor(tf_dataset_factory=factory, record_batch_factory=None,
                                       data_view_decode_fn=None)


def to_example(row: Dict, feature_spec: Dict) -> bytes:
  """A raw tf.Example as CsvExampleGen would write it (label included when present)."""
  f = {}
  for name, spec in feature_spec.items():
    if name not in row:
      continue
    v = row[name]
    if spec.dtype == tf.string:
      f[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(v).encode()]))
    elif spec.dtype == tf.int64:
      f[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))
    else:
      f[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)]))
  return tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString()


def _instance(row: Dict, feature_spec: Dict) -> Dict:
  out = {}
  for name, spec in feature_spec.items():
    v = row[name]
    out[name] = np.array([str(v).encode() if spec.dtype == tf.string else v],
                         dtype=object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype)
  return out


def build(tmp_dir: str, rows: int = 300, train_share: float = 0.8,
          numeric_bins: int = 0, apriori_column: Optional[str] = None,
          min_count: int = 5) -> TransformSample:
  """K-Means grouping as configs/ames.yaml; with `apriori_column`, a-priori groups on that
  column (categories with fewer than `min_count` train rows share the fallback group)."""
  cfg = load_config("configs/ames.yaml", overrides={"dataset.sample_rows": rows})
  frame = prepare.build_frame(cfg, prepare.load_source(cfg.dataset.source))
  n_train = int(train_share * len(frame))
  schema = schema_pb2.Schema()
  with open(cfg.schema_path) as f:
    text_format.Parse(f.read(), schema)
  feature_spec = schema_utils.schema_as_feature_spec(schema).feature_spec

  g = cfg.grouping
  if apriori_column:
    grouping = fitting.fit_apriori(frame[apriori_column].to_numpy()[:n_train], apriori_column,
                                   min_count=min_count)
  else:
    grouping = fitting.fit_kmeans(
        fitting.as_float_matrix({c: frame[c].to_numpy()[:n_train] for c in g.features},
                                g.features), g.features, g.k_range, seed=g.seed)
  grouping_uri = os.path.join(tmp_dir, "grouping")
  store.save(grouping, grouping_uri)

  transform_output = os.path.join(tmp_dir, "transform")
  records = frame.to_dict("records")
  train = [_instance(r, feature_spec) for r in records[:n_train]]
  evals = [_instance(r, feature_spec) for r in records[n_train:]]
  custom = {"numeric_features": list(cfg.dataset.numeric_features),
            "categorical_features": list(cfg.dataset.categorical_features),
            "label": cfg.dataset.label, "grouping_uri": grouping_uri,
            "numeric_bins": numeric_bins}
  fn = functools.partial(preprocessing.preprocessing_fn, custom_config=custom)
  metadata = dataset_metadata.DatasetMetadata(schema)
  out_dir = os.path.join(tmp_dir, "transformed")
  options = PipelineOptions(["--direct_running_mode=in_memory", "--direct_num_workers=1"])
  with beam.Pipeline(options=options) as p, tft_beam.Context(temp_dir=os.path.join(tmp_dir, "tft_tmp")):
    train_pc = p | "train" >> beam.Create(train)
    eval_pc = p | "eval" >> beam.Create(evals)
    (t_train, t_meta), transform_fn = (train_pc, metadata) | tft_beam.AnalyzeAndTransformDataset(
        fn)
    t_eval, _ = ((eval_pc, metadata), transform_fn) | tft_beam.TransformDataset()
    coder = tft.coders.ExampleProtoCoder(t_meta.dataset_metadata.schema)
    for name, pc in (("train", t_train), ("eval", t_eval)):
      _ = (pc | f"encode_{name}" >> beam.Map(coder.encode)
           | f"write_{name}" >> beam.io.WriteToTFRecord(os.path.join(out_dir, name, "part"),
                                                        file_name_suffix=".tfrecord"))
    _ = transform_fn | tft_beam.WriteTransformFn(transform_output)
  # Transform also records the raw metadata: the serving signatures parse requests with it.
  metadata_io.write_metadata(metadata, os.path.join(transform_output,
                                                    tft.TFTransformOutput.RAW_METADATA_DIR))
  return TransformSample(
      cfg=cfg, frame=frame, n_train=n_train, schema=schema, grouping_uri=grouping_uri,
      transform_output=transform_output,
      train_files=[os.path.join(out_dir, "train", "*")],
      eval_files=[os.path.join(out_dir, "eval", "*")], numeric_bins=numeric_bins)
