"""env/find_python.sh: finds a 3.10 interpreter, or says what to install."""
import json
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_finds_a_python_310():
  out = subprocess.run(["bash", "env/find_python.sh"], capture_output=True, text=True, check=True,
                       cwd=REPO_ROOT)
  exe = out.stdout.strip()
  ver = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"],
                       capture_output=True, text=True, check=True).stdout.strip()
  assert ver == "(3, 10)"


def test_explains_what_to_install_when_none_exists(tmp_path):
  env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no pyenv, no 3.10 on PATH
  if any(os.access(os.path.join(d, "python3.10"), os.X_OK) for d in env["PATH"].split(":")):
    env["PATH"] = str(tmp_path)   # a system python3.10 exists: hide it
    env["PATH"] += ":" + os.path.dirname(subprocess.run(
        ["bash", "-c", "command -v bash"], capture_output=True, text=True).stdout.strip())
  out = subprocess.run(["bash", "env/find_python.sh"], capture_output=True, text=True, env=env,
                       cwd=REPO_ROOT)
  assert out.returncode == 1
  assert "no Python 3.10 interpreter found" in out.stderr
  assert "pyenv install 3.10" in out.stderr


def test_venv_runs_the_pinned_stack():
  import tfx  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  assert sys.version_info[:2] == (3, 10)
  assert tfx.__version__ == "1.16.0" and tf.__version__ == "2.16.2"
  # Keras 2 (tf-keras), not Keras 3: under Keras 3 tf.keras is keras._tf_keras.keras and its
  # Model class lives in keras.src
  assert tf.keras.__name__.startswith("tf_keras."), tf.keras.__name__
  assert tf.keras.Model.__module__.startswith("tf_keras."), tf.keras.Model.__module__


# Every top-level package sets TF_USE_LEGACY_KERAS=1 in its __init__, so a process that imports
# one of them before TensorFlow (a runner, a TFX executor, a notebook) gets Keras 2.
PACKAGES = ("bench", "components", "data", "models", "pipeline", "serving")
_PROBE = """
import importlib, json, os
unset = []
for name in {packages!r}:
  os.environ.pop("TF_USE_LEGACY_KERAS", None)
  importlib.import_module(name)
  if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    unset.append(name)
import tensorflow as tf
print(json.dumps({{"unset": unset, "model_module": tf.keras.Model.__module__}}))
"""


def test_each_package_selects_keras_2_before_tensorflow_loads():
  """A fresh process without TF_USE_LEGACY_KERAS (conftest sets it here, so this can only be
  checked outside the test process)."""
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  out = subprocess.run([sys.executable, "-c", _PROBE.format(packages=PACKAGES)], env=env,
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  probe = json.loads(out.stdout.strip().splitlines()[-1])
  assert probe["unset"] == [], f"these packages do not select Keras 2: {probe['unset']}"
  assert probe["model_module"].startswith("tf_keras."), probe
