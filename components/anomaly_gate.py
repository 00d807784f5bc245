"""Stops a run on data anomalies: ExampleValidator only records them, this makes them fatal.

The grouping component calls `raise_on_anomalies` before it reads any example, and everything
downstream (Transform, Trainer, Evaluator, Pusher) depends on its output, so a bad data drop
never reaches training or serving, on every orchestrator.
"""
from __future__ import annotations

import os
from typing import List

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils

ANOMALIES_FILE = "SchemaDiff.pb"


class DataAnomalyError(RuntimeError):
  """The input data violates the schema; the message names each column and anomaly."""


def read_anomalies(artifact) -> List[str]:
  """Human-readable problems, one per split/column: 'split eval: column X: <reason>'."""
  problems = []
  for split in artifact_utils.decode_split_names(artifact.split_names):
    path = os.path.join(artifact.uri, f"Split-{split}", ANOMALIES_FILE)
    if not tf.io.gfile.exists(path):
      continue
    anomalies = anomalies_pb2.Anomalies()
    with tf.io.gfile.GFile(path, "rb") as f:
      anomalies.ParseFromString(f.read())
    for column, info in sorted(anomalies.anomaly_info.items()):
      reasons = "; ".join(f"{r.short_description}: {r.description}" for r in info.reason)
      problems.append(f"split '{split}': column '{column}': {reasons or info.description}")
    if anomalies.HasField("dataset_anomaly_info"):
      for r in anomalies.dataset_anomaly_info.reason:
        problems.append(f"split '{split}': dataset: {r.short_description}: {r.description}")
  return problems


def raise_on_anomalies(artifacts) -> None:
  problems = [p for a in artifacts for p in read_anomalies(a)]
  if problems:
    raise DataAnomalyError(
        "ExampleValidator found data anomalies; stopping before grouping and training:\n  "
        + "\n  ".join(problems))
