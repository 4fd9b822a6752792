#!/usr/bin/env bash
# The prepared GPU check, for a lent NVIDIA machine (no internet): builds deepcore with the
# CUDA backend, runs the CUDA tests against the CPU backend, the GEMM benchmark and the
# training benchmark against PyTorch.
# Everything goes to $OUT/gpu.log (and the terminal). Runs in the repository root with
# `.whl/` holding the scipy-openblas32 wheel (not installed there) and pybind11 (3.0 or later:
# the machine's own may be older), made beforehand with
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 -d .whl scipy-openblas32==<version>
#   python3 -m pip download --no-deps -d .whl "pybind11>=3"
# with <version> pyproject.toml's pin (the build carries a copy of that OpenBLAS; patchelf,
# absent there, only renames the copy).
# Expects python3 with pybind11, scikit-build-core, cmake, ninja, numpy, nvidia-cublas,
# pytest (torch optional, for the comparison) and nvcc (CUDA 13) on PATH or in
# /usr/local/cuda. Budget: under 8 minutes (each step has its own timeout).
#
#   bash bench/gpu/run.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/deepcore-gpu}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu.log") 2>&1
start=$SECONDS
step() { echo; echo "=== [$((SECONDS - start)) s] $*"; }
status=0

step "machine"
nvidia-smi || echo "nvidia-smi failed"
python3 --version
if ! command -v nvcc >/dev/null; then
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
    if [ -x "$d/nvcc" ]; then export PATH="$d:$PATH"; break; fi
  done
fi
nvcc --version | tail -2 || echo "no nvcc: the CUDA build below cannot work"
python3 - <<'PY'
import importlib
for m in ["numpy", "pybind11", "scikit_build_core", "cmake", "ninja", "torch", "pytest", "nvidia.cu13"]:
    try:
        mod = importlib.import_module(m)
        print(f"  {m}: {getattr(mod, '__version__', '')} {list(getattr(mod, '__path__', []))[:1]}")
    except Exception as e:
        print(f"  {m}: MISSING ({e})")
PY

step "scipy-openblas32 and pybind11 from .whl into /tmp/site"
site=/tmp/site
rm -rf "$site"
python3 -m pip install -q --no-index --no-deps --target "$site" .whl/scipy_openblas32-*.whl \
  .whl/pybind11-*.whl || status=1
export PYTHONPATH="$site"
# cuBLASLt: the plugin's RPATH ($ORIGIN/../nvidia/cu13/lib) finds it when deepcore and
# nvidia-cublas share a site-packages; here deepcore goes to /tmp/site, so say where it is.
cublas_lib=$(python3 -c 'import nvidia.cu13 as c; print(list(c.__path__)[0] + "/lib")')
export LD_LIBRARY_PATH="$cublas_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "cuBLASLt from $cublas_lib"

step "build with DEEPCORE_CUDA=ON (build/gpu)"
build_start=$SECONDS
if ! timeout 330 python3 -m pip install --no-build-isolation --no-deps --target "$site" --upgrade . \
  -Cbuild-dir=build/gpu -Ccmake.define.DEEPCORE_CUDA=ON -Cbuild.verbose=true \
  >"$OUT/build.log" 2>&1; then
  tail -60 "$OUT/build.log"
  echo "build FAILED after $((SECONDS - build_start)) s (full log: build.log)"
  exit 1
fi
grep -E "warning|nvcc" "$OUT/build.log" | grep -v "^ *$" | tail -15
echo "build took $((SECONDS - build_start)) s"
ls -la "$site/deepcore/"*.so
python3 - <<'PY'
import deepcore as dc
print("deepcore from", dc.__file__)
print("cuda available:", dc.cuda.is_available())
try:
    print("device:", dc.cuda.device_name())
except Exception as e:
    print("device_name raised:", type(e).__name__, e)
PY

step "tests: tests/test_cuda*.py tests/test_backend_*.py"
timeout 200 python3 -m pytest -q -p no:cacheprovider -rs --durations=5 \
  tests/test_cuda*.py tests/test_backend_*.py || status=1

step "benchmark: bench/bench_cuda_fit.py (training against PyTorch)"
timeout 100 python3 bench/bench_cuda_fit.py || status=1

step "benchmark: bench/bench_cuda.py (GEMM)"
timeout 60 python3 bench/bench_cuda.py --quick || status=1

step "done, status $status, total $((SECONDS - start)) s"
exit "$status"
