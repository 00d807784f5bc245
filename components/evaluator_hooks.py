"""The GroupedEvaluator's hook module (its `module_path`): TFMA extension points the stock TFX
Evaluator executor loads by name with udf_utils. Both hooks must live in this one module,
because with a module_path set, udf_utils looks every hook up there (and silently drops one it
cannot find).

`custom_extractors`: slice by the candidate's groups only. TFMA 0.47's SliceKeyExtractor looks a
slice key up in the transformed features of EVERY model spec and takes the union, so with a
baseline the candidate alone runs its `transform_features` (candidate_only_slicing, applied to
the eval config by the executor). When only one model yields transformed features,
ModelSignaturesDoFn stores them without the model-name key and the multi-model
SliceKeyExtractor finds nothing; the extractor added here re-keys them by candidate.

`custom_eval_shared_model`: TFMA loads a `boosted` model in every Beam worker. A boosted
SavedModel runs TF-DF ops, registered only by `import tensorflow_decision_forests` in the process
that loads it; with a multi-process or distributed runner the workers never import it, so the
loader registers the ops first (and only when the graph needs them).

A module of its own, holding no component classes, because udf_utils `importlib.reload`s the
hook module when it is already loaded: reloading the module that defines GroupedEvaluator would
leave two generations of its spec class in one process, and the next pipeline built there
would fail spec validation.
"""
from __future__ import annotations

import copy
import os

import apache_beam as beam
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants as tfma_constants

MODULE_PATH = __name__


def candidate_only_slicing(config: tfma.EvalConfig, has_baseline: bool) -> None:
  """Candidate and baseline as explicit model specs; only the candidate's transform graph runs
  (and so defines `group_id` slices). In place; no-op without a baseline."""
  if not has_baseline or len(config.model_specs) != 1:
    return
  candidate = config.model_specs[0]
  candidate.name = tfma.CANDIDATE_KEY
  baseline = config.model_specs.add()
  baseline.CopyFrom(candidate)
  baseline.name = tfma.BASELINE_KEY
  baseline.is_baseline = True
  del baseline.preprocessing_function_names[:]


@beam.ptransform_fn
def _KeyTransformedFeaturesByCandidate(extracts):  # pylint: disable=invalid-name
  def rekey(extract):
    transformed = extract.get(tfma_constants.TRANSFORMED_FEATURES_KEY)
    if not isinstance(transformed, dict) or tfma.CANDIDATE_KEY in transformed:
      return extract
    out = copy.copy(extract)
    out[tfma_constants.TRANSFORMED_FEATURES_KEY] = {tfma.CANDIDATE_KEY: transformed}
    return out
  return extracts | beam.Map(rekey)


def custom_extractors(eval_shared_model, eval_config, tensor_adapter_config):
  """TFMA's default extractors; with a baseline, the candidate's transformed features (the only
  ones computed, see candidate_only_slicing) are keyed by its name so slicing finds them."""
  extractors = tfma.default_extractors(eval_shared_model=eval_shared_model,
                                       eval_config=eval_config,
                                       tensor_adapter_config=tensor_adapter_config)
  if len(eval_config.model_specs) < 2:
    return extractors
  at = next(i for i, e in enumerate(extractors) if e.stage_name == "ExtractTransformedFeatures")
  extractors.insert(at + 1, tfma.extractors.Extractor(
      stage_name="KeyTransformedFeaturesByCandidate",
      ptransform=_KeyTransformedFeaturesByCandidate()))  # pylint: disable=no-value-for-parameter
  return extractors


def register_ops(saved_model_path: str) -> None:
  """Imports tensorflow_decision_forests if the SavedModel uses its ops (SimpleML*)."""
  pb = os.path.join(saved_model_path, "saved_model.pb")
  if os.path.exists(pb):
    with open(pb, "rb") as f:
      if b"SimpleML" in f.read():
        # pylint: disable-next=g-import-not-at-top,unused-import
        import tensorflow_decision_forests  # noqa: F401


def custom_eval_shared_model(eval_saved_model_path, model_name, eval_config, **kwargs):
  """tfma.default_eval_shared_model whose loader registers TF-DF ops where it runs."""
  register_ops(eval_saved_model_path)
  shared = tfma.default_eval_shared_model(eval_saved_model_path=eval_saved_model_path,
                                          model_name=model_name, eval_config=eval_config,
                                          **kwargs)
  load = shared.model_loader.construct_fn

  def construct():
    register_ops(eval_saved_model_path)
    return load()

  return shared._replace(model_loader=tfma.types.ModelLoader(
      construct_fn=construct, tags=shared.model_loader.tags))
