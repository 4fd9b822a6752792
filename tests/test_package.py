"""The package's metadata: one version (the build reads deepcore.__version__)."""

import importlib.metadata

import deepcore as dc


def test_one_version():
    assert importlib.metadata.version("deepcore") == dc.__version__
