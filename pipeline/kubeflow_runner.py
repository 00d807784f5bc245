"""Compiles the pipeline for Kubeflow Pipelines V2 with KubeflowV2DagRunner.

Nothing runs here: it writes the PipelineJob JSON (Vertex AI) and its PipelineSpec YAML
(kfp.Client) that a platform team submits (docs/orchestration.md). Every step runs in the
image built from the repo's Dockerfile, where the repo sits at CONTAINER_ROOT, so
repo-relative config paths are mapped there. The input data and the push destination are
runtime parameters; the pipeline root is a submit-time setting.

  python -m pipeline.kubeflow_runner --config configs/ames.yaml --image REGISTRY/IMAGE:TAG

The image is required (config `kubeflow.image` or --image) and must be one a cluster can pull:
a bare name such as `grouped-regression:latest` names no registry and is refused.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import posixpath
from typing import Any, Dict, Optional

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

from pipeline.config import PipelineConfig, load_config
from pipeline.from_config import pipeline_args
from pipeline.pipeline import create_pipeline

log = logging.getLogger(__name__)

CONTAINER_ROOT = "/pipeline"   # the Dockerfile's WORKDIR, where the repo is copied
DATA_ROOT_PARAM = "data_root"
PUSH_DESTINATION_PARAM = "push_destination"
PACKAGES = ("json", "yaml")


class ImageError(ValueError):
  """The Kubeflow image reference is missing or cannot be pulled by a cluster."""


def check_image(image: str) -> str:
  """`image` if a cluster can pull it by that name; ImageError (saying what to set) otherwise.

  Refused: no image at all, and an image with no registry host (`name[:tag]`, which a node
  resolves to docker.io/library/name, i.e. not ours) that is untagged or `:latest`.
  """
  hint = ("set kubeflow.image in the config or pass --image REGISTRY/grouped-regression:TAG "
          "(the image built from the Dockerfile and pushed; see docs/orchestration.md)")
  if not image or not image.strip():
    raise ImageError(f"kubeflow: no container image given; {hint}")
  name = image.split("@", 1)[0]
  first, _, rest = name.partition("/")
  has_registry = bool(rest) and ("." in first or ":" in first or first == "localhost")
  last = name.rsplit("/", 1)[-1]
  tag = last.split(":", 1)[1] if ":" in last else ""
  if not has_registry and "@" not in image and tag in ("", "latest"):
    raise ImageError(f"kubeflow: image '{image}' names no registry and no fixed tag, so no "
                     f"cluster can pull what you built; {hint}")
  return image


def container_path(path: str) -> str:
  """A repo-relative config path as seen inside the image; absolute paths and URIs unchanged."""
  if "://" in path or posixpath.isabs(path):
    return path
  return posixpath.join(CONTAINER_ROOT, path)


def kfp_name(name: str) -> str:
  """KFP V2 pipeline names match [a-z0-9][a-z0-9-]{0,127}: underscores become dashes."""
  return name.lower().replace("_", "-")


def push_destination_json(base_directory: str) -> str:
  """The Pusher's PushDestination as the JSON string its runtime parameter carries."""
  dest = tfx.proto.PushDestination(
      filesystem=tfx.proto.PushDestination.Filesystem(base_directory=base_directory))
  return json_format.MessageToJson(dest, indent=None, sort_keys=True)


def parameter_defaults(cfg: PipelineConfig, *, data_root: Optional[str] = None,
                       serving_model_dir: Optional[str] = None) -> Dict[str, str]:
  """Default value of each runtime parameter; push_destination has none unless configured."""
  k = cfg.kubeflow
  defaults = {DATA_ROOT_PARAM: data_root or k.data_root or container_path(cfg.dataset.csv_dir)}
  serving = serving_model_dir or k.serving_model_dir
  if serving:
    defaults[PUSH_DESTINATION_PARAM] = push_destination_json(serving)
  return defaults


def kubeflow_pipeline_args(cfg: PipelineConfig, defaults: Dict[str, str], *,
                           pipeline_root: str) -> Dict[str, Any]:
  """create_pipeline arguments for KFP: container paths, runtime parameters, no local MLMD."""
  param = lambda name: tfx.dsl.experimental.RuntimeParameter(  # noqa: E731
      name=name, ptype=str, default=defaults.get(name))
  args = pipeline_args(cfg)
  args.update(
      pipeline_name=kfp_name(args["pipeline_name"]),
      pipeline_root=pipeline_root,
      data_root=param(DATA_ROOT_PARAM),
      schema_path=container_path(cfg.dataset.schema) if cfg.dataset.schema else None,
      serving_model_dir=param(PUSH_DESTINATION_PARAM),
  )
  return args


def with_defaults(job: Dict[str, Any], defaults: Dict[str, str],
                  pipeline_root: str) -> pipeline_spec_pb2.PipelineJob:
  """The compiled job as a proto (parsing validates it), with the runtime parameters' defaults
  and the pipeline root also written into the PipelineSpec, which TFX leaves out: kfp.Client
  submits the spec alone, so without them every parameter would be required at submit."""
  spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
  for name, value in defaults.items():
    parameter = spec.root.input_definitions.parameters[name]
    parameter.default_value.string_value = value
    parameter.is_optional = True
  if pipeline_root:
    spec.default_pipeline_root = pipeline_root
  out = json_format.ParseDict({k: v for k, v in job.items() if k != "pipelineSpec"},
                              pipeline_spec_pb2.PipelineJob())
  out.pipeline_spec.update(json_format.MessageToDict(spec))
  return out


def compile_pipeline(cfg: PipelineConfig, output_dir: str, *, image: Optional[str] = None,
                     pipeline_root: Optional[str] = None, data_root: Optional[str] = None,
                     serving_model_dir: Optional[str] = None) -> Dict[str, str]:
  """Writes <name>.json (PipelineJob: Vertex AI, or the record of defaults) and <name>.yaml
  (PipelineSpec: kfp.Client) into output_dir; returns {"json": path, "yaml": path}."""
  image = check_image(image or cfg.kubeflow.image)
  root = pipeline_root if pipeline_root is not None else cfg.kubeflow.pipeline_root
  defaults = parameter_defaults(cfg, data_root=data_root, serving_model_dir=serving_model_dir)
  args = kubeflow_pipeline_args(cfg, defaults, pipeline_root=root)
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
          default_image=image, use_pipeline_spec_2_1=True))
  job = with_defaults(runner.run(create_pipeline(**args), parameter_values=defaults,
                                 write_out=False), defaults, root)
  os.makedirs(output_dir, exist_ok=True)
  paths = {ext: os.path.join(output_dir, f"{args['pipeline_name']}.{ext}") for ext in PACKAGES}
  job_dict = json_format.MessageToDict(job)
  with open(paths["json"], "w") as f:
    json.dump(job_dict, f, sort_keys=True, indent=1)
  with open(paths["yaml"], "w") as f:
    yaml.safe_dump(job_dict["pipelineSpec"], f, sort_keys=True)
  log.info("kubeflow: wrote %s", ", ".join(paths.values()))
  return paths


def main() -> None:
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--config", required=True)
  p.add_argument("--output-dir", help="where the JSON goes (default: <outputs.root>/kubeflow)")
  p.add_argument("--image", help="container image REGISTRY/IMAGE:TAG (default: kubeflow.image "
                 "in the config; one of the two is required)")
  p.add_argument("--pipeline-root", help="default pipeline root (default: kubeflow.pipeline_root)")
  p.add_argument("--data-root", help="default of the data_root runtime parameter")
  p.add_argument("--serving-model-dir", help="default base directory of push_destination")
  args = p.parse_args()
  cfg = load_config(args.config)
  output_dir = args.output_dir or os.path.join(cfg.output_root, "kubeflow")
  try:
    check_image(args.image or cfg.kubeflow.image)
  except ImageError as e:
    p.error(str(e))
  paths = compile_pipeline(cfg, output_dir, image=args.image, pipeline_root=args.pipeline_root,
                           data_root=args.data_root, serving_model_dir=args.serving_model_dir)
  for kind, path in paths.items():
    print(f"Kubeflow V2 pipeline ({kind}): {os.path.relpath(path)}")


if __name__ == "__main__":
  main()
