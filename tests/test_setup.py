"""env/find_python.sh: finds a 3.10 interpreter, or says what to install."""
import os
import subprocess
import sys


def test_finds_a_python_310():
  out = subprocess.run(["bash", "env/find_python.sh"], capture_output=True, text=True, check=True)
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
  out = subprocess.run(["bash", "env/find_python.sh"], capture_output=True, text=True, env=env)
  assert out.returncode == 1
  assert "no Python 3.10 interpreter found" in out.stderr
  assert "pyenv install 3.10" in out.stderr


def test_venv_runs_the_pinned_stack():
  import tfx  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  assert sys.version_info[:2] == (3, 10)
  assert tfx.__version__ == "1.16.0" and tf.__version__ == "2.16.2"
  assert os.environ.get("TF_USE_LEGACY_KERAS") == "1"
  assert tf.keras.__name__.startswith("tf_keras") or "keras/src" not in tf.keras.__file__
