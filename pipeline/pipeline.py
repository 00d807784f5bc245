"""create_pipeline: the one pipeline definition every runner imports.

It takes every setting as an argument and holds no paths or environment logic of its own
(runners resolve those), so the same graph runs locally, on Kubeflow V2 and on Airflow.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx

from components.group_gate import GroupGate
from components.grouped_evaluator import GroupedEvaluator
from components.grouping.component import Grouping
from components.grouping_inputs import GroupedTrainer, GroupedTransform
from components.label_range import LabelRangeSchemaGen
from components.push_guard import GuardedPusher
from models.grouped_regression import features as fk
from models.grouped_regression import piecewise

PREPROCESSING_FN = "models.grouped_regression.preprocessing.preprocessing_fn"
RUN_FN = "models.grouped_regression.trainer.run_fn"
TRAIN, EVAL, TEST = "train", "eval", "test"
DEFAULT_SPLIT_SIZES = {TRAIN: 70, EVAL: 15, TEST: 15}   # hash buckets (percent)


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    data_root: Union[str, tfx.dsl.experimental.RuntimeParameter],
    schema_path: Optional[str],
    label: str,
    numeric_features: Sequence[str],
    categorical_features: Sequence[str],
    grouping: Dict[str, Any],
    model: Dict[str, Any],
    eval_config: tfma.EvalConfig,
    serving_model_dir: Union[str, tfx.dsl.experimental.RuntimeParameter],
    split_sizes: Optional[Dict[str, int]] = None,
    beam_pipeline_args: Optional[List[str]] = None,
    metadata_connection_config=None,
    enable_cache: bool = True,
    group_gate: Optional[GroupGate] = None,
    label_transform: str = "none",
) -> tfx.dsl.Pipeline:
  """ExampleGen -> stats/schema/validation -> Grouping -> Transform -> Trainer -> Evaluator -> Pusher.

  Three splits, three jobs: `train` fits (Grouping, Transform's analyzers, the Trainer), `eval`
  makes every model choice (early stopping, refit candidates), `test` alone judges (every
  Evaluator metric, the per-group gate, the blessing). Transform materialises only train and
  eval, so the Trainer never receives a test file. `split_sizes` maps split -> hash buckets.

  `grouping` holds the Grouping component's arguments (mode, features, k_values, seed, ...);
  `model` the hyperparameters handed to run_fn; `label_transform` ("log" or "none") tells run_fn
  how the label was derived, so a log label's served model also outputs original units.
  `data_root` may be a RuntimeParameter, and `serving_model_dir` a RuntimeParameter holding a
  PushDestination as JSON (Kubeflow V2).
  """
  sizes = split_sizes or DEFAULT_SPLIT_SIZES
  example_gen = tfx.components.CsvExampleGen(
      input_base=data_root,
      output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=[
          tfx.proto.SplitConfig.Split(name=name, hash_buckets=int(sizes[name]))
          for name in (TRAIN, EVAL, TEST)])))
  statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
  if schema_path:  # a curated schema is the contract every data drop is validated against
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)
  else:           # no curated schema yet: infer one, label bounded (first look at a new CSV)
    schema_gen = LabelRangeSchemaGen(statistics=statistics_gen.outputs["statistics"],
                                     label=label).with_id("SchemaGen")
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])

  grouping_component = Grouping(
      examples=example_gen.outputs["examples"],
      anomalies=example_validator.outputs["anomalies"],
      group_feature=fk.GROUP_KEY, **grouping)

  features_config = dict(numeric_features=list(numeric_features),
                         categorical_features=list(categorical_features), label=label,
                         numeric_bins=piecewise.width(model.get("numeric_bins")))
  transform = GroupedTransform(
      examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"],
      grouping=grouping_component.outputs["grouping"], preprocessing_fn=PREPROCESSING_FN,
      custom_config=features_config,
      # analyzers see train only; test is never materialised, so the Trainer cannot receive it
      splits_config=tfx.proto.SplitsConfig(analyze=[TRAIN], transform=[TRAIN, EVAL]),
      disable_statistics=True)   # StatisticsGen already covers the raw data

  trainer = GroupedTrainer(
      examples=transform.outputs["transformed_examples"],
      transform_graph=transform.outputs["transform_graph"],
      grouping=grouping_component.outputs["grouping"], run_fn=RUN_FN,
      custom_config={**features_config, "label_transform": label_transform,
                     "model": dict(model)},
      train_args=tfx.proto.TrainArgs(splits=[TRAIN]),
      eval_args=tfx.proto.EvalArgs(splits=[EVAL]))

  baseline_resolver = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
      model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
      model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
  ).with_id("latest_blessed_model_resolver")

  # `group_gate` (per-group RMSE tolerance, min test rows) becomes TFMA thresholds at run time,
  # once the Grouping component has counted each group's test rows. The raw test examples are
  # scored; group_id comes from the candidate's transform_features signature (eval_config).
  evaluator = GroupedEvaluator(
      examples=example_gen.outputs["examples"],
      example_splits=[TEST],
      model=trainer.outputs["model"],
      baseline_model=baseline_resolver.outputs["model"],
      eval_config=eval_config,
      grouping=grouping_component.outputs["grouping"],
      group_gate=group_gate or GroupGate(group_feature=fk.GROUP_KEY),
  ).with_id("Evaluator")

  pusher = GuardedPusher(  # stock Pusher that skips a model identical to the latest push
      model=trainer.outputs["model"],
      model_blessing=evaluator.outputs["blessing"],
      push_destination=serving_model_dir
      if isinstance(serving_model_dir, tfx.dsl.experimental.RuntimeParameter)
      else tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir))
  ).with_id("Pusher")

  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=[example_gen, statistics_gen, schema_gen, example_validator,
                  grouping_component, transform, trainer, baseline_resolver, evaluator, pusher],
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args or [])
