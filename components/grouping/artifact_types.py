"""Artifact type of the grouping component. The name follows KFP's `namespace.TypeName` rule."""
from tfx import v1 as tfx


class GroupingModel(tfx.dsl.Artifact):
  """Fitted grouping: centroids/scaler or vocabulary, k, selection curve, counts and a report."""
  TYPE_NAME = "grouped_regression.GroupingModel"
