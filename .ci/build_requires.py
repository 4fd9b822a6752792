"""Prints the build requirements, one per line: pyproject.toml's [build-system] requires, or
with `hook`, those scikit-build-core's PEP 517 hook adds (cmake and ninja when the machine
has none). For the CI builds that run without isolation (.ci/sanitize, .ci/cuda)."""

import sys

try:
    import tomllib
except ImportError:  # Python < 3.11: pip's own copy
    from pip._vendor import tomli as tomllib

if sys.argv[1:] == ["hook"]:
    from scikit_build_core import build

    print("\n".join(build.get_requires_for_build_wheel()))
else:
    with open("pyproject.toml", "rb") as f:
        print("\n".join(tomllib.load(f)["build-system"]["requires"]))
