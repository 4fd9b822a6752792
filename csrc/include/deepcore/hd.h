// DC_HD marks a function that both the CPU and the CUDA kernels call: __host__ __device__
// under nvcc, nothing elsewhere. DC_HD_INLINE is DC_HD for a small function that must be
// inlined wherever it is called (a vectorized CPU loop calls nothing), whatever the size of
// the file that calls it.
#pragma once

#ifndef DC_HD
#if defined(__CUDACC__)
#define DC_HD __host__ __device__
#define DC_HD_INLINE __host__ __device__ __forceinline__
#else
#define DC_HD
#define DC_HD_INLINE inline __attribute__((always_inline))
#endif
#endif
