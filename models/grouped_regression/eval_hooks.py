"""Evaluator hook (the Evaluator's module_path): TFMA loads a `boosted` model in every Beam worker.

Why: a boosted SavedModel runs TF-DF ops, registered only by `import tensorflow_decision_forests`
in the process that loads it. With a multi-process or distributed Beam runner TFMA loads the
model in worker processes that never import it, so `custom_eval_shared_model` wraps TFMA's
loader to register the ops first (and only when the graph needs them).
"""
from __future__ import annotations

import os

import tensorflow_model_analysis as tfma


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
