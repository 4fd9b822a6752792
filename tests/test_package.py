"""The package's metadata: one version (the build reads deepcore.__version__)."""

import importlib.metadata

import deepcore as dc


def test_one_version():
    assert importlib.metadata.version("deepcore") == dc.__version__


def test_threadpoolctl_sees_and_limits_the_engine_threads():
    import pytest

    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = dc.config.get_num_threads()
    ours = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "deepcore"]
    assert len(ours) == 1 and ours[0]["num_threads"] == before
    assert ours[0]["version"] == dc.__version__
    with threadpoolctl.threadpool_limits(1):
        assert dc.config.get_num_threads() == 1
    assert dc.config.get_num_threads() == before
    with threadpoolctl.threadpool_limits(1, user_api="blas"):  # (another pool's limit)
        assert dc.config.get_num_threads() == before


def test_the_engine_stub_lists_the_engine():
    """python/deepcore/_core.pyi (pybind11-stubgen's, for type checkers and editors) names
    every public function and class of the extension, and nothing else."""
    import ast
    import pathlib

    stub = pathlib.Path(dc.__file__).with_name("_core.pyi")
    tree = ast.parse(stub.read_text())
    names = {
        n.name
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")
    }
    public = {n for n in dir(dc._core) if not n.startswith("_")}
    assert names == public, (sorted(public - names), sorted(names - public))
