"""Feature keys shared by preprocessing, training, export and evaluation.

Raw column names come from the config; these helpers name what the Transform graph emits.
"""
GROUP_KEY = "group_id"          # int64 group id, computed in the Transform graph
LABEL_KEY = "label"             # transformed label (raw label units)
PREDICTION_KEY = "prediction"   # serving output
GROUP_OUTPUT_KEY = "group_id"   # serving output: the group the model assigned


def numeric_key(name: str) -> str:
  return f"{name}_z"


def piecewise_key(name: str) -> str:
  """[numeric_bins] piecewise-linear encoding of a numeric feature (model.numeric_bins > 1)."""
  return f"{name}_ple"


def categorical_key(name: str) -> str:
  return f"{name}_idx"


def vocab_name(name: str) -> str:
  return f"vocab_{name}"
