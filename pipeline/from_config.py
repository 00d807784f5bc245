"""Maps a PipelineConfig onto create_pipeline's arguments: the only place the two meet."""
from __future__ import annotations

from typing import Any, Dict

from pipeline.config import PipelineConfig
from components.group_gate import GroupGate
from pipeline.eval_config import build_eval_config


def grouping_args(cfg: PipelineConfig) -> Dict[str, Any]:
  g = cfg.grouping
  features = list(g.features) if g.mode == "kmeans" else [g.column]
  return dict(mode=g.mode, features=features, k_values=g.k_range, seed=g.seed,
              min_group_share=g.min_group_share, sample_size=g.sample_size,
              silhouette_sample=g.silhouette_sample, min_count=g.min_count,
              categorical=g.categorical, n_init=g.n_init, tie_tolerance=g.tie_tolerance)


def pipeline_args(cfg: PipelineConfig) -> Dict[str, Any]:
  """Every create_pipeline argument except metadata_connection_config."""
  d, e = cfg.dataset, cfg.evaluation
  return dict(
      pipeline_name=f"grouped_regression_{cfg.name}",
      pipeline_root=cfg.pipeline_root,
      data_root=cfg.csv_dir,
      schema_path=cfg.schema_path,
      label=d.label,
      label_transform=d.label_transform,
      numeric_features=d.numeric_features,
      categorical_features=d.categorical_features,
      grouping=grouping_args(cfg),
      model=dict(vars(cfg.model)),
      eval_config=build_eval_config(label_key=d.label, rmse_upper_bound=e.rmse_upper_bound,
                                    overall_rmse_tolerance=e.overall_rmse_tolerance,
                                    extra_slices=e.extra_slices,
                                    min_interval_coverage=e.min_interval_coverage),
      group_gate=GroupGate(relative_tolerance=e.group_rmse_tolerance,
                           min_examples=e.min_group_examples),
      serving_model_dir=cfg.serving_base_dir,
      split_sizes=dict(d.split_sizes),
      beam_pipeline_args=list(cfg.beam.args),
  )
