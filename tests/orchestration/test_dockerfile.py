"""The Kubeflow image's Dockerfile, checked by construction (no Docker engine here).

Static: base image, pins, WORKDIR/PYTHONPATH agreeing with kubeflow_runner.CONTAINER_ROOT.
Dynamic: the build context as .dockerignore leaves it is copied to a temp dir and the
Dockerfile's own post-COPY RUN steps (bake the data, import check) run there with its ENV, so a
module the image needs but the context lacks, or a broken import, fails here as in `docker build`.
"""
from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from typing import Dict, List, Tuple

import pytest

from pipeline import kubeflow_runner
from pipeline.config import REPO_ROOT, load_config

DOCKERFILE = os.path.join(REPO_ROOT, "Dockerfile")
DOCKERIGNORE = os.path.join(REPO_ROOT, ".dockerignore")


def instructions() -> List[Tuple[str, str]]:
  """(KEYWORD, arguments) per Dockerfile instruction, continuation lines joined."""
  with open(DOCKERFILE) as f:
    text = re.sub(r"\\\n", " ", f.read())
  out = []
  for line in text.splitlines():
    line = line.strip()
    if line and not line.startswith("#"):
      keyword, _, args = line.partition(" ")
      out.append((keyword.upper(), args.strip()))
  return out


def env_of(instrs) -> Dict[str, str]:
  env = {}
  for keyword, args in instrs:
    if keyword == "ENV":
      env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
  return env


def lock_pins() -> Dict[str, str]:
  pins = {}
  with open(os.path.join(REPO_ROOT, "env", "requirements.lock")) as f:
    for line in f:
      if "==" in line and not line.startswith("#"):
        name, version = line.strip().split("==")
        pins[re.sub(r"[-_.]+", "-", name).lower()] = version
  return pins


def test_base_image_and_paths_match_the_runner():
  instrs = instructions()
  assert instrs[0] == ("FROM", "tensorflow/tfx:1.16.0")
  assert ("WORKDIR", kubeflow_runner.CONTAINER_ROOT) in instrs
  env = env_of(instrs)
  # Extended, not overwritten: the repo first, then whatever PYTHONPATH the base image had.
  assert env["PYTHONPATH"] == kubeflow_runner.CONTAINER_ROOT + "${PYTHONPATH:+:${PYTHONPATH}}"
  assert env["TF_USE_LEGACY_KERAS"] == "1"
  assert ("COPY", f". {kubeflow_runner.CONTAINER_ROOT}") in instrs


def test_every_installed_package_is_pinned_by_the_lock():
  pins = lock_pins()
  assert pins["tfx"] == "1.16.0"   # the base image's TFX
  installs = [a for k, a in instructions() if k == "RUN" and "pip install" in a]
  assert len(installs) == 1 and "-c env/requirements.lock" in installs[0]
  packages = installs[0].split("-c env/requirements.lock", 1)[1].split()
  assert packages
  for spec in packages:
    name, _, version = spec.partition("==")
    key = re.sub(r"[-_.]+", "-", name).lower()
    assert key in pins, f"{name} is installed in the image but not pinned in the lock"
    assert not version or version == pins[key], spec


def _ignored(path: str, patterns: List[str]) -> bool:
  parts = path.split("/")
  prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
  for pattern in patterns:
    bare = pattern[3:] if pattern.startswith("**/") else None
    for prefix in prefixes:
      if fnmatch.fnmatchcase(prefix, pattern):
        return True
      if bare and fnmatch.fnmatchcase(prefix.rsplit("/", 1)[-1], bare):
        return True
  return False


def build_context(dest: str) -> None:
  """Copies what `docker build .` would send: the checkout's files minus .dockerignore."""
  with open(DOCKERIGNORE) as f:
    patterns = [p.strip() for p in f if p.strip() and not p.startswith("#")]
  files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
  for rel in files.splitlines():
    src = os.path.join(REPO_ROOT, rel)
    if os.path.isfile(src) and not _ignored(rel, patterns):
      os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
      shutil.copy2(src, os.path.join(dest, rel))


def test_dockerignore_keeps_what_the_pipeline_needs_and_drops_local_state():
  with open(DOCKERIGNORE) as f:
    patterns = [p.strip() for p in f if p.strip() and not p.startswith("#")]
  for kept in ("components/grouping/executor.py", "models/grouped_regression/trainer.py",
               "pipeline/pipeline.py", "configs/ames.yaml", "schemas/ames/schema.pbtxt",
               "data/prepare.py", "env/requirements.lock"):
    assert not _ignored(kept, patterns), kept
  for dropped in (".venv/bin/python", "outputs/ames/metadata.sqlite", "data/ames/ames.csv",
                  "components/__pycache__/x.pyc", ".git/HEAD"):
    assert _ignored(dropped, patterns), dropped


@pytest.mark.timeout(900)
def test_post_copy_build_steps_succeed_in_the_build_context(tmp_path):
  context = tmp_path / "context"
  build_context(str(context))
  instrs = instructions()
  copy_all = instrs.index(("COPY", f". {kubeflow_runner.CONTAINER_ROOT}"))
  steps = [a for k, a in instrs[copy_all + 1:] if k == "RUN"]
  assert any("data.prepare" in s for s in steps) and any("import " in s for s in steps)
  env = {**os.environ, **env_of(instrs), "PYTHONPATH": str(context)}
  for step in steps:
    command = re.sub(r"^python ", f"{sys.executable} ", step)
    proc = subprocess.run(["bash", "-c", command], cwd=context, env=env, capture_output=True,
                          text=True, timeout=850, check=False)
    assert proc.returncode == 0, f"RUN {step}\n{proc.stderr[-3000:]}"
  # the data_root runtime parameter's default points at what the build baked in
  cfg = load_config("configs/ames.yaml")
  assert os.path.isfile(os.path.join(context, cfg.dataset.csv_dir, f"{cfg.name}.csv"))
  assert kubeflow_runner.parameter_defaults(cfg)["data_root"] == \
      f"{kubeflow_runner.CONTAINER_ROOT}/{cfg.dataset.csv_dir}"
