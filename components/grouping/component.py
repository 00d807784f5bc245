"""The grouping TFX component: K-Means (or a-priori) groups, fitted on train, counted per split.

Its one output is the grouping model artifact; it writes no examples. Defaults: defaults.py.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

from tfx import v1 as tfx
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import component_spec, standard_artifacts

from components import code_version
from components.grouping import defaults as d
from components.grouping import executor, fit_train, fitting
from components.grouping.artifact_types import GroupingModel


def make_config(*, mode: str, features, k_values, group_feature: str = d.GROUP_FEATURE,
                seed: int = d.SEED, min_group_share: float = d.MIN_GROUP_SHARE,
                sample_size: int = d.SAMPLE_SIZE, silhouette_sample: int = d.SILHOUETTE_SAMPLE,
                min_count: int = d.MIN_COUNT, categorical: str = d.CATEGORICAL,
                n_init: int = d.N_INIT, tie_tolerance: float = d.TIE_TOLERANCE) -> Dict[str, Any]:
  """The executor's config (validated), shared by the component and standalone.run."""
  features = list(features)
  if mode not in (fitting.KMEANS, fitting.APRIORI):
    raise ValueError(f"grouping mode '{mode}' not in ('kmeans', 'apriori')")
  if mode == fitting.APRIORI and len(features) != 1:
    raise ValueError(f"apriori grouping takes exactly one column, got {features}")
  if not features:
    raise ValueError("kmeans grouping needs at least one feature")
  if categorical not in fit_train.CATEGORICAL_POLICIES:
    raise ValueError(f"categorical '{categorical}' not in {fit_train.CATEGORICAL_POLICIES}")
  return dict(mode=mode, features=features, k_values=[int(k) for k in k_values],
              group_feature=group_feature, seed=int(seed), min_group_share=float(min_group_share),
              sample_size=int(sample_size), silhouette_sample=int(silhouette_sample),
              min_count=int(min_count), categorical=categorical, n_init=int(n_init),
              tie_tolerance=float(tie_tolerance))


EXECUTOR_MODULE = executor.__name__   # what the node runs: its code_version covers it


class GroupingSpec(component_spec.ComponentSpec):
  PARAMETERS = {executor.CONFIG_KEY: component_spec.ExecutionParameter(type=str),
                **code_version.PARAMETER}
  INPUTS = {
      executor.EXAMPLES_KEY: component_spec.ChannelParameter(type=standard_artifacts.Examples),
      executor.ANOMALIES_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ExampleAnomalies, optional=True),
  }
  OUTPUTS = {
      executor.GROUPING_KEY: component_spec.ChannelParameter(type=GroupingModel),
  }


class Grouping(base_beam_component.BaseBeamComponent):
  """Fits groups on the train split; it reads examples and writes no examples.

  Output: `grouping` (GroupingModel: centroids/scaler or vocabulary, k curve, per-split per-group
  row counts, report). The group id itself is computed in the Transform graph from raw features.
  Passing ExampleValidator's `anomalies` makes any anomaly stop the run here.
  """
  SPEC_CLASS = GroupingSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, examples, *, mode: str, features, k_values,
               group_feature: str = d.GROUP_FEATURE,
               anomalies: Optional[tfx.types.BaseChannel] = None, seed: int = d.SEED,
               min_group_share: float = d.MIN_GROUP_SHARE, sample_size: int = d.SAMPLE_SIZE,
               silhouette_sample: int = d.SILHOUETTE_SAMPLE, min_count: int = d.MIN_COUNT,
               categorical: str = d.CATEGORICAL, n_init: int = d.N_INIT,
               tie_tolerance: float = d.TIE_TOLERANCE):
    """mode 'kmeans' clusters `features` (k fixed, or chosen from `k_values`); mode 'apriori'
    groups by the single column in `features`. See fit_train/fitting/kselect for the rules."""
    config = make_config(mode=mode, features=features, k_values=k_values,
                         group_feature=group_feature, seed=seed, min_group_share=min_group_share,
                         sample_size=sample_size, silhouette_sample=silhouette_sample,
                         min_count=min_count, categorical=categorical, n_init=n_init,
                         tie_tolerance=tie_tolerance)
    spec = GroupingSpec(
        examples=examples, anomalies=anomalies,
        grouping_config=json.dumps(config, sort_keys=True),
        code_version=code_version.fingerprint(EXECUTOR_MODULE),
        grouping=tfx.dsl.Channel(type=GroupingModel))
    super().__init__(spec=spec)
