"""deepcore's CUDA GEMM (cuBLASLt, FP32, no TF32) against torch.matmul on the same GPU.

    python bench/bench_cuda.py [--quick]

Prints, per shape (m, n, k of C = A B, float32): TFLOP/s of
  dc loop   - a loop of GEMMs on device memory inside C++ (_core.device_gemm_seconds)
  dc call   - one _core.device_gemm call from Python, including the uploads and download
  torch     - torch.matmul on CUDA tensors, TF32 off (torch.backends.cuda.matmul.allow_tf32)
and the CPU backend's loop for the small shapes. 2 m n k flops per GEMM.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import deepcore as dc
from deepcore import _core

try:
    import torch
except ImportError:
    torch = None

CPU, CUDA = 0, 1
SHAPES = [
    (128, 512, 784),
    (784, 512, 128),
    (1024, 1024, 1024),
    (4096, 4096, 4096),
    (8192, 8192, 8192),
]


def iters_for(m, n, k, rate=30e12, seconds=0.3):
    return int(max(3, min(2000, seconds * rate / (2 * m * n * k))))


def torch_seconds(m, n, k, iters):
    a = torch.randn(m, k, device="cuda")
    b = torch.randn(k, n, device="cuda")
    torch.matmul(a, b)
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(iters):
            torch.matmul(a, b)
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / iters)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if not dc.cuda.is_available():
        raise SystemExit("bench_cuda: no CUDA backend here (deepcore.cuda.is_available() is False)")
    print(f"GPU: {dc.cuda.device_name()}")
    if torch is not None and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        print(f"torch {torch.__version__}, TF32 off")
    else:
        print("torch with CUDA not available: its column is empty")
    shapes = SHAPES[:4] if args.quick else SHAPES
    rng = np.random.default_rng(0)
    print(
        f"{'m':>6} {'n':>6} {'k':>6} | {'dc loop':>9} {'dc call':>9} {'torch':>9} "
        f"{'dc/torch':>8} | {'cpu loop':>9}   (TFLOP/s)"
    )
    for m, n, k in shapes:
        flops = 2.0 * m * n * k
        iters = iters_for(m, n, k)
        loop = min(_core.device_gemm_seconds(CUDA, m, n, k, iters) for _ in range(3))
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        _core.device_gemm(CUDA, a, b)
        calls = max(2, min(20, iters // 10))
        t0 = time.perf_counter()
        for _ in range(calls):
            _core.device_gemm(CUDA, a, b)
        call = (time.perf_counter() - t0) / calls
        tt = (
            torch_seconds(m, n, k, iters)
            if torch is not None and torch.cuda.is_available()
            else None
        )
        cpu = None
        if m * n * k <= 1024**3:
            cpu = _core.device_gemm_seconds(CPU, m, n, k, max(2, iters_for(m, n, k, 1e12, 0.2)))

        def fmt(t, flops=flops):
            return f"{flops / t / 1e12:9.2f}" if t else f"{'-':>9}"

        ratio = f"{tt / loop:8.2f}" if tt else f"{'-':>8}"
        print(
            f"{m:>6} {n:>6} {k:>6} | {fmt(loop)} {fmt(call)} {fmt(tt)} {ratio} | {fmt(cpu)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
