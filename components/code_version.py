"""A content fingerprint of the project code a component runs, as one of its exec properties.

Why: TFX's cache key covers a node's inputs, its exec properties and its executor's class name,
and, for a `module_file`, that file's text (tfx/orchestration/portable/cache_utils.py). Our
Transform and Trainer name `preprocessing_fn`/`run_fn` by dotted path and our own components
name their executors by class, so without this an edit to the model or grouping code left the
cache key alone: a rerun on the same outputs root reported the old model as `cached`.

The fingerprint is taken when the component is built (when the pipeline is compiled, for
Kubeflow and Airflow, like TFX's own user-module wheels): SHA-256 over the source of the entry
modules and of every first-party module they import, transitively. First-party means a module
file under the directory that holds the entry module's top-level package (the repo root).
The standard library's modulefinder reads the imports from the bytecode; nothing is executed.
Third-party versions are not in it: they are pinned (env/requirements.lock) and an upgrade
should start from a fresh root.
"""
from __future__ import annotations

import hashlib
import importlib.util
import modulefinder
import os
from typing import Dict, Iterable

from tfx.types import component_spec

CODE_VERSION_KEY = "code_version"
# optional: a node built without it (an older compiled pipeline) still validates
PARAMETER = {CODE_VERSION_KEY: component_spec.ExecutionParameter(type=str, optional=True)}


def _root(module: str) -> str:
  """The directory holding `module`'s top-level package (found without importing it)."""
  spec = importlib.util.find_spec(module.split(".")[0])
  if spec is None or not spec.origin:
    raise ValueError(f"code_version: cannot find module {module!r}")
  top = spec.origin
  if os.path.basename(top) == "__init__.py":
    top = os.path.dirname(top)
  return os.path.dirname(top)


def sources(modules: Iterable[str]) -> Dict[str, str]:
  """{module name: source path} of `modules` and the first-party modules they import
  (the standard library's modulefinder, searching the repo root only)."""
  modules = list(modules)
  root = _root(modules[0])
  finder = modulefinder.ModuleFinder(path=[root])
  for name in modules:
    try:
      finder.import_hook(name)
    except ImportError as e:
      raise ValueError(f"code_version: {name!r} is not a module under {root}") from e
  return {name: m.__file__ for name, m in finder.modules.items() if m.__file__}


def fingerprint(*modules: str) -> str:
  """16 hex digits that change when the source of `modules`, or of any first-party module they
  import, changes (names and bytes, in name order)."""
  h = hashlib.sha256()
  for name, path in sorted(sources(modules).items()):
    with open(path, "rb") as f:
      text = f.read()
    h.update(f"{name}\0{len(text)}\0".encode())
    h.update(text)
  return h.hexdigest()[:16]


def of_function(dotted_path: str) -> str:
  """The fingerprint of the module holding a function named 'package.module.fn'."""
  return fingerprint(dotted_path.rpartition(".")[0])
