"""The deployment files render, validate against the Kubernetes API schema, and say what we need.

Rendering is `kubectl kustomize` (offline); validation is kubernetes-validate (PyPI, schemas
bundled, no cluster), installed by `make setup`. A missing tool fails with an install hint.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf
import yaml

from pipeline.config import load_config

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(REPO, "serving", "deploy")
IMAGE = "tensorflow/serving:2.16.1"
K8S_VERSION = "1.30.0"
OVERLAYS = ("local", "cloud")


def test_image_matches_the_training_tensorflow():
  assert IMAGE.split(":")[1].split(".")[:2] == tf.__version__.split(".")[:2]


def _kubectl() -> str:
  path = shutil.which("kubectl")
  if not path:
    pytest.fail("kubectl (with kustomize >= 5) is needed to render serving/deploy: install it "
                "(e.g. `apt-get install kubectl` from the Kubernetes apt repository)")
  return path


def render(overlay_dir: str):
  out = subprocess.run([_kubectl(), "kustomize", overlay_dir], capture_output=True, text=True,
                       timeout=120, check=False)
  assert out.returncode == 0, out.stderr
  return out.stdout, [d for d in yaml.safe_load_all(out.stdout) if d]


def validate(text: str, tmp_path) -> subprocess.CompletedProcess:
  path = tmp_path / "rendered.yaml"
  path.write_text(text)
  out = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet",
                        "-k", K8S_VERSION, str(path)], capture_output=True, text=True,
                       timeout=300, check=False)
  if "No module named kubernetes_validate" in out.stderr or \
      "No module named 'importlib_resources'" in out.stderr:
    pytest.fail("kubernetes-validate is missing: `make setup` installs it, or "
                f"`{sys.executable} -m pip install kubernetes-validate==1.37.0 "
                "importlib-resources==7.1.0`")
  return out


def _by_kind(docs):
  found = {}
  for d in docs:
    found.setdefault(d["kind"], []).append(d)
  return found


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request):
  text, docs = render(os.path.join(DEPLOY, "overlays", request.param))
  return request.param, text, _by_kind(docs)


def test_rendered_manifests_pass_the_kubernetes_schema(rendered, tmp_path):
  _, text, _ = rendered
  out = validate(text, tmp_path)
  assert out.returncode == 0, out.stdout + out.stderr


def test_the_validator_rejects_a_misspelled_field(rendered, tmp_path):
  """The check above can fail: the same render with one unknown field does not validate."""
  _, text, _ = rendered
  out = validate(text.replace("readinessProbe:", "readinesProbe:"), tmp_path)
  assert out.returncode != 0


def _container(kinds):
  (deployment,) = kinds["Deployment"]
  (container,) = deployment["spec"]["template"]["spec"]["containers"]
  return deployment, container


def test_probes_resources_and_non_root(rendered):
  _, _, kinds = rendered
  deployment, c = _container(kinds)
  assert c["image"] == IMAGE
  assert c["startupProbe"]["httpGet"]["path"] == "/v1/models/ames"
  startup_budget = c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"]
  assert startup_budget >= 300  # a slow first load is not a crash loop
  assert c["readinessProbe"]["httpGet"]["path"] == "/v1/models/ames"
  assert "livenessProbe" in c
  limits, requests_ = c["resources"]["limits"], c["resources"]["requests"]
  assert {"cpu", "memory"} <= set(limits) and {"cpu", "memory"} <= set(requests_)
  cpus = int(str(limits["cpu"]).rstrip("m")) // (1000 if str(limits["cpu"]).endswith("m") else 1)
  assert f"--tensorflow_intra_op_parallelism={cpus}" in c["args"]  # threads sized to the CPUs
  pod = deployment["spec"]["template"]["spec"]
  assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"]
  assert c["securityContext"]["readOnlyRootFilesystem"] is True
  assert c["securityContext"]["allowPrivilegeEscalation"] is False
  assert "--monitoring_config_file=/config/monitoring.config" in c["args"]
  (monitoring,) = [m for m in kinds["ConfigMap"] if "monitoring.config" in m.get("data", {})]
  assert "prometheus_config" in monitoring["data"]["monitoring.config"]


def test_model_name_and_base_path_are_parameters(rendered):
  overlay, _, kinds = rendered
  _, c = _container(kinds)
  env = {e["name"]: e["valueFrom"]["configMapKeyRef"] for e in c["env"]}
  params = {m["metadata"]["name"]: m["data"] for m in kinds["ConfigMap"]}
  assert params[env["MODEL_NAME"]["name"]]["MODEL_NAME"] == \
      load_config("configs/ames.yaml").serving.model_name
  base = params[env["MODEL_BASE_PATH"]["name"]]["MODEL_BASE_PATH"]
  deployment, _ = _container(kinds)
  volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
  if overlay == "local":
    assert deployment["spec"]["replicas"] == 1 and base == "/models"
    assert "hostPath" in volumes["models"]
  else:
    assert deployment["spec"]["replicas"] >= 2 and base.startswith("gs://")
    assert "models" not in volumes and not any("persistentVolumeClaim" in v
                                               for v in volumes.values())


def test_grpc_has_a_headless_service(rendered):
  _, _, kinds = rendered
  headless = [s for s in kinds["Service"] if s["spec"].get("clusterIP") == "None"]
  assert headless and any(p["port"] == 8500 for p in headless[0]["spec"]["ports"])
  deployment, _ = _container(kinds)
  for s in kinds["Service"]:
    assert s["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_another_model_name_renders_everywhere(tmp_path):
  """An overlay that only sets MODEL_NAME gets its probe paths and selectors from it."""
  overlay = tmp_path / "other"
  overlay.mkdir()
  rel = os.path.relpath(DEPLOY, overlay)
  (overlay / "kustomization.yaml").write_text(f"""
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namePrefix: diamonds-
resources: [{rel}/base]
components: [{rel}/components/model-params]
configMapGenerator:
  - name: serving-params
    behavior: merge
    literals: [MODEL_NAME=diamonds]
""")
  text, docs = render(str(overlay))
  kinds = _by_kind(docs)
  _, c = _container(kinds)
  assert c["readinessProbe"]["httpGet"]["path"] == "/v1/models/diamonds"
  assert c["startupProbe"]["httpGet"]["path"] == "/v1/models/diamonds"
  assert all(s["spec"]["selector"]["serving.grouped-regression/model"] == "diamonds"
             for s in kinds["Service"])
  assert "ames" not in text


def test_compose_has_a_healthcheck_and_a_path_from_the_repo_root():
  with open(os.path.join(DEPLOY, "docker-compose.yml")) as f:
    compose = yaml.safe_load(f)
  (svc,) = compose["services"].values()
  assert svc["image"] == IMAGE
  assert "AVAILABLE" in " ".join(svc["healthcheck"]["test"])
  default = svc["volumes"][0].split(":-", 1)[1].split("}", 1)[0]
  # Compose resolves relative paths against the compose file's directory.
  resolved = os.path.normpath(os.path.join(DEPLOY, default))
  cfg = load_config("configs/ames.yaml")
  assert resolved == os.path.join(REPO, "outputs", cfg.serving.model_name, "serving_model")
  assert svc["environment"]["MODEL_BASE_PATH"] == "/models"
  mounted = os.path.normpath(os.path.join(DEPLOY, svc["volumes"][1].split(":")[0]))
  assert os.path.isfile(mounted)
