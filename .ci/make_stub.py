"""Regenerates python/deepcore/_core.pyi, the engine's stub, from the built extension:
pybind11-stubgen's output (pip install pybind11-stubgen), with each enum's members written
as `name = value` (what type checkers read as enum members) and without the untyped
`__new__` / `__format__` it copies from enum.IntEnum.

    python .ci/make_stub.py
"""

import pathlib
import re
import subprocess
import sys
import tempfile

import deepcore._core as core

root = pathlib.Path(__file__).resolve().parent.parent
with tempfile.TemporaryDirectory() as out:
    subprocess.run(
        [sys.executable, "-m", "pybind11_stubgen", "deepcore._core", "-o", out], check=True
    )
    text = (pathlib.Path(out) / "deepcore" / "_core.pyi").read_text()


def member(m: re.Match) -> str:
    cls = getattr(core, m.group(3))
    return f"{m.group(1)}{m.group(2)} = {int(getattr(cls, m.group(2)))}"


text = re.sub(
    r"^( +)(\w+): typing\.ClassVar\[(\w+)\]$",
    lambda m: (
        member(m)
        if isinstance(getattr(core, m.group(3), None), type)
        and issubclass(getattr(core, m.group(3)), int)
        else m.group(0)
    ),
    text,
    flags=re.M,
)
text = re.sub(r"    @classmethod\n    def __new__\(cls, value\):\n        \.\.\.\n", "", text)
text = re.sub(r"    def __format__\(self, format_spec\):\n        \.\.\.\n", "", text)
(root / "python" / "deepcore" / "_core.pyi").write_text(text)
