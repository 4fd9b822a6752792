// DC_HD marks a function that both the CPU and the CUDA kernels call: __host__ __device__
// under nvcc, nothing elsewhere.
#pragma once

#ifndef DC_HD
#if defined(__CUDACC__)
#define DC_HD __host__ __device__
#else
#define DC_HD
#endif
#endif
