"""The deployment files agree with each other, with the config and with the TF we train with."""
from __future__ import annotations

import os

import tensorflow as tf
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from pipeline.config import load_config

DEPLOY = os.path.join(os.path.dirname(__file__), "..", "..", "serving", "deploy")
IMAGE = "tensorflow/serving:2.16.1"


def test_image_matches_the_training_tensorflow():
  assert IMAGE.split(":")[1].split(".")[:2] == tf.__version__.split(".")[:2]


def _read(name: str) -> str:
  with open(os.path.join(DEPLOY, name)) as f:
    return f.read()


def _models_config(text: str) -> model_server_config_pb2.ModelServerConfig:
  return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def test_models_config_names_the_configured_model():
  cfg = load_config("configs/ames.yaml")
  (model,) = _models_config(_read("models.config")).model_config_list.config
  assert model.name == cfg.serving.model_name
  assert model.base_path == f"/models/{cfg.serving.model_name}"
  assert model.model_platform == "tensorflow"
  assert model.model_version_policy.latest.num_versions == 1


def test_compose_serves_the_pusher_dir_with_the_training_tf_version():
  compose = yaml.safe_load(_read("docker-compose.yml"))
  (svc,) = compose["services"].values()
  assert svc["image"] == IMAGE
  assert set(svc["ports"]) == {"8500:8500", "8501:8501"}
  assert "--model_config_file=/config/models.config" in svc["command"]
  mounts = {v.rsplit(":", 2)[1]: v.rsplit(":", 2)[0] for v in svc["volumes"]}
  assert mounts["/config/models.config"] == "./models.config"
  assert "outputs/ames/serving_model/ames" in mounts["/models/ames"]


def test_kubernetes_deployment_service_and_probe():
  docs = {d["kind"]: d for d in yaml.safe_load_all(_read("kubernetes.yaml"))}
  assert {"ConfigMap", "Deployment", "Service"} <= set(docs)
  assert docs["ConfigMap"]["data"]["models.config"].strip() == _read("models.config").strip()
  (container,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
  assert container["image"] == IMAGE
  assert {p["containerPort"] for p in container["ports"]} == {8500, 8501}
  probe = container["readinessProbe"]["httpGet"]
  assert probe == {"path": "/v1/models/ames", "port": 8501}
  mounts = {m["mountPath"] for m in container["volumeMounts"]}
  assert {"/models/ames", "/config"} <= mounts
  assert {p["port"] for p in docs["Service"]["spec"]["ports"]} == {8500, 8501}
  assert docs["Service"]["spec"]["selector"] == docs["Deployment"]["spec"]["selector"][
      "matchLabels"]
