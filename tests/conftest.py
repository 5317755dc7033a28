"""Shared test settings: quiet TensorFlow, and where the real data lives."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATASETS = os.path.join(os.path.dirname(REPO_ROOT), "shared", "datasets")
CITYSCAPES_ARCHIVE = os.path.join(SHARED_DATASETS, "cityscapes.tar.gz")

requires_cityscapes = pytest.mark.skipif(
    not os.path.exists(CITYSCAPES_ARCHIVE),
    reason=f"real Cityscapes archive not found at {CITYSCAPES_ARCHIVE}",
)
