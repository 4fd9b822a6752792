// CUDA convolution and pooling kernels, NHWC: grid-stride loops with one thread per output
// element, around the window arithmetic of deepcore/window_maths.h (the CPU's). The
// adjoints (col2im, the pooling backwards) are gathers: each input element's thread adds
// what the windows covering it send, in the order the CPU's scatter adds them, so there
// are no atomics and every run gives the same result.
#include <cstdint>

#include "common.cuh"
#include "conv.cuh"
#include "deepcore/window_maths.h"

namespace deepcore {
namespace cuda {
namespace {

using window::Range;

// Window2D in a kernel's index type: int32_t when every index fits (far quicker division
// on the GPU), int64_t otherwise.
template <class I>
struct Geom {
  I h, w, c, kh, kw, sh, sw, pt, pl, oh, ow, dh, dw;
};

// The (n, y, x, c) of element t of an NHWC tensor of (h, w, c) images.
template <class I>
struct Pixel {
  I n, y, x, c;
};
template <class I>
__device__ inline Pixel<I> pixel_of(int64_t t, I h, I w, I c) {
  I j = static_cast<I>(t);
  const I ci = j % c;
  j /= c;
  const I xi = j % w;
  j /= w;
  return {j / h, j % h, xi, ci};
}


template <class I>
Geom<I> geom(const Window2D& g) {
  return {static_cast<I>(g.h),  static_cast<I>(g.w),  static_cast<I>(g.c),
          static_cast<I>(g.kh), static_cast<I>(g.kw), static_cast<I>(g.sh),
          static_cast<I>(g.sw), static_cast<I>(g.pad_top), static_cast<I>(g.pad_left),
          static_cast<I>(g.oh), static_cast<I>(g.ow), static_cast<I>(g.dh),
          static_cast<I>(g.dw)};
}

// Whether the int32_t kernels can run: the `in` and `out` elements they index, and the
// sums of positions, window sizes and strides along each axis, stay below 2^31.
bool fits_int32(const Window2D& g, int64_t in, int64_t out) {
  constexpr int64_t kMax = INT32_MAX;
  return in <= kMax && out <= kMax && 2 * (g.h + g.kh * g.dh + g.sh) <= kMax &&
         2 * (g.w + g.kw * g.dw + g.sw) <= kMax;
}

__device__ inline int64_t first_index() {
  return blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
}
__device__ inline int64_t grid_stride() { return int64_t(gridDim.x) * blockDim.x; }

// cols[(n, oy, ox), (ky, kx, ci)] = x[n, iy, ix, ci], 0 in the padding; one thread per
// entry of cols (consecutive threads: consecutive channels).
template <class I>
__global__ void im2col_kernel(Geom<I> g, const float* __restrict__ x, float* __restrict__ cols,
                              int64_t total) {
  for (int64_t t = first_index(); t < total; t += grid_stride()) {
    I j = static_cast<I>(t);
    const I ci = j % g.c;
    j /= g.c;
    const I kx = j % g.kw;
    j /= g.kw;
    const I ky = j % g.kh;
    j /= g.kh;
    const I ox = j % g.ow;
    j /= g.ow;
    const I oy = j % g.oh, n = j / g.oh;
    const I iy = window::input_at(oy, ky * g.dh, g.sh, g.pt);
    const I ix = window::input_at(ox, kx * g.dw, g.sw, g.pl);
    const bool inside = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
    cols[t] = inside ? x[((n * g.h + iy) * g.w + ix) * g.c + ci] : 0.f;
  }
}

// dx[n, iy, ix, ci] = the sum over the windows (oy, ox) covering (iy, ix), in increasing
// order, of their cols entry that reads it: one thread per input element. Dilated windows
// are found by offset, the largest first (the earliest window).
template <class I>
__global__ void col2im_kernel(Geom<I> g, const float* __restrict__ cols, float* __restrict__ dx,
                              int64_t total) {
  for (int64_t t = first_index(); t < total; t += grid_stride()) {
    const Pixel<I> p = pixel_of(t, g.h, g.w, g.c);
    const I n = p.n, iy = p.y, ix = p.x, ci = p.c;
    if (g.dh != 1 || g.dw != 1) {
      float s = 0.f;
      for (I ky = g.kh - 1; ky >= 0; --ky) {
        const I oy = window::window_reading(iy, ky, g.sh, g.dh, g.pt, g.oh);
        if (oy < 0) continue;
        for (I kx = g.kw - 1; kx >= 0; --kx) {
          const I ox = window::window_reading(ix, kx, g.sw, g.dw, g.pl, g.ow);
          if (ox >= 0)
            s += cols[((((n * g.oh + oy) * g.ow + ox) * g.kh + ky) * g.kw + kx) * g.c + ci];
        }
      }
      dx[t] = s;
      continue;
    }
    const Range<I> oys = window::windows_covering(iy, g.kh, g.sh, g.pt, g.oh);
    const Range<I> oxs = window::windows_covering(ix, g.kw, g.sw, g.pl, g.ow);
    float s = 0.f;
    for (I oy = oys.begin; oy < oys.end; ++oy) {
      const I ky = window::offset_of(iy, oy, g.sh, g.pt);
      for (I ox = oxs.begin; ox < oxs.end; ++ox) {
        const I kx = window::offset_of(ix, ox, g.sw, g.pl);
        s += cols[((((n * g.oh + oy) * g.ow + ox) * g.kh + ky) * g.kw + kx) * g.c + ci];
      }
    }
    dx[t] = s;
  }
}

// y[n, oy, ox, ci] = the maximum over the window's valid part, argmax its index in image n
// (the first maximum in row-major order, as the CPU): one thread per output element.
template <class I>
__global__ void maxpool_forward_kernel(Geom<I> g, const float* __restrict__ x,
                                       float* __restrict__ y, int32_t* __restrict__ argmax,
                                       int64_t total) {
  for (int64_t t = first_index(); t < total; t += grid_stride()) {
    const Pixel<I> p = pixel_of(t, g.oh, g.ow, g.c);
    const I n = p.n, oy = p.y, ox = p.x, ci = p.c;
    const Range<I> ys = window::window_inside(oy, g.kh, g.sh, g.pt, g.h);
    const Range<I> xs = window::window_inside(ox, g.kw, g.sw, g.pl, g.w);
    const float* xn = x + n * (g.h * g.w * g.c);
    I best_at = (ys.begin * g.w + xs.begin) * g.c + ci;
    float best = xn[best_at];
    for (I iy = ys.begin; iy < ys.end; ++iy)
      for (I ix = xs.begin; ix < xs.end; ++ix) {
        const I at = (iy * g.w + ix) * g.c + ci;
        const float v = xn[at];
        if (window::beats(v, best)) {
          best = v;
          best_at = at;
        }
      }
    y[t] = best;
    argmax[t] = static_cast<int32_t>(best_at);
  }
}

// dx[n, iy, ix, ci] = the sum, over the windows covering (iy, ix) in increasing order, of
// the dy whose argmax is this element: one thread per input element.
template <class I>
__global__ void maxpool_backward_kernel(Geom<I> g, const float* __restrict__ dy,
                                        const int32_t* __restrict__ argmax,
                                        float* __restrict__ dx, int64_t total) {
  for (int64_t t = first_index(); t < total; t += grid_stride()) {
    const Pixel<I> p = pixel_of(t, g.h, g.w, g.c);
    const I n = p.n, iy = p.y, ix = p.x, ci = p.c;
    const int32_t self = static_cast<int32_t>((iy * g.w + ix) * g.c + ci);
    const Range<I> oys = window::windows_covering(iy, g.kh, g.sh, g.pt, g.oh);
    const Range<I> oxs = window::windows_covering(ix, g.kw, g.sw, g.pl, g.ow);
    float s = 0.f;
    for (I oy = oys.begin; oy < oys.end; ++oy)
      for (I ox = oxs.begin; ox < oxs.end; ++ox) {
        const I o = ((n * g.oh + oy) * g.ow + ox) * g.c + ci;
        if (argmax[o] == self) s += dy[o];
      }
    dx[t] = s;
  }
}

// y[n, oy, ox, ci] = the mean over the window's valid part (each value weighted by
// 1 / count, added in row-major order as the CPU): one thread per output element.
template <class I>
__global__ void avgpool_forward_kernel(Geom<I> g, const float* __restrict__ x,
                                       float* __restrict__ y, int64_t total) {
  for (int64_t t = first_index(); t < total; t += grid_stride()) {
    const Pixel<I> p = pixel_of(t, g.oh, g.ow, g.c);
    const I n = p.n, oy = p.y, ox = p.x, ci = p.c;
    const Range<I> ys = window::window_inside(oy, g.kh, g.sh, g.pt, g.h);
    const Range<I> xs = window::window_inside(ox, g.kw, g.sw, g.pl, g.w);
    const float inv = window::average_weight(int64_t(ys.size()) * xs.size());
    const float* xn = x + n * (g.h * g.w * g.c);
    float s = 0.f;
    for (I iy = ys.begin; iy < ys.end; ++iy)
      for (I ix = xs.begin; ix < xs.end; ++ix) s += xn[(iy * g.w + ix) * g.c + ci] * inv;
    y[t] = s;
  }
}

// dx[n, iy, ix, ci] = the sum, over the windows covering (iy, ix) in increasing order, of
// dy / (the window's valid count): one thread per input element.
template <class I>
__global__ void avgpool_backward_kernel(Geom<I> g, const float* __restrict__ dy,
                                        float* __restrict__ dx, int64_t total) {
  for (int64_t t = first_index(); t < total; t += grid_stride()) {
    const Pixel<I> p = pixel_of(t, g.h, g.w, g.c);
    const I n = p.n, iy = p.y, ix = p.x, ci = p.c;
    const Range<I> oys = window::windows_covering(iy, g.kh, g.sh, g.pt, g.oh);
    const Range<I> oxs = window::windows_covering(ix, g.kw, g.sw, g.pl, g.ow);
    float s = 0.f;
    for (I oy = oys.begin; oy < oys.end; ++oy) {
      const I rows = window::window_inside(oy, g.kh, g.sh, g.pt, g.h).size();
      for (I ox = oxs.begin; ox < oxs.end; ++ox) {
        const I cols = window::window_inside(ox, g.kw, g.sw, g.pl, g.w).size();
        s += dy[((n * g.oh + oy) * g.ow + ox) * g.c + ci] *
             window::average_weight(int64_t(rows) * cols);
      }
    }
    dx[t] = s;
  }
}

// Runs kernel<int32_t> or kernel<int64_t> (see fits_int32) over `total` elements.
template <class Launch>
void launch(const Window2D& g, int64_t in, int64_t out, int64_t total, const char* what,
            Launch&& run) {
  if (total <= 0) return;
  if (fits_int32(g, in, out))
    run(geom<int32_t>(g));
  else
    run(geom<int64_t>(g));
  check_launch(what);
}

// y[r, k, ci] = x[r, ci]: one thread per element of y.
template <class I>
__global__ void repeat_rows_kernel(const float* __restrict__ x, I size, I cols,
                                   float* __restrict__ y, int64_t total) {
  for (int64_t t = first_index(); t < total; t += grid_stride()) {
    const I j = static_cast<I>(t), ci = j % cols;
    y[t] = x[j / cols / size * cols + ci];
  }
}

// dx[r, ci] = dy[r, 0, ci] + dy[r, 1, ci] + ... (in that order, as the CPU): one thread per
// element of dx.
template <class I>
__global__ void repeat_rows_backward_kernel(const float* __restrict__ dy, I size, I cols,
                                            float* __restrict__ dx, int64_t total) {
  for (int64_t t = first_index(); t < total; t += grid_stride()) {
    const I j = static_cast<I>(t), r = j / cols, ci = j % cols;
    const float* d = dy + r * size * cols + ci;
    float s = d[0];
    for (I k = 1; k < size; ++k) s += d[k * cols];
    dx[t] = s;
  }
}

}  // namespace

void repeat_rows(cudaStream_t stream, const float* x, int64_t rows, int64_t size, int64_t cols,
                 float* y) {
  const int64_t total = rows * size * cols;
  if (total <= 0) return;
  if (total <= INT32_MAX)
    repeat_rows_kernel<int32_t><<<blocks_for(total), kThreads, 0, stream>>>(
        x, static_cast<int32_t>(size), static_cast<int32_t>(cols), y, total);
  else
    repeat_rows_kernel<int64_t><<<blocks_for(total), kThreads, 0, stream>>>(x, size, cols, y,
                                                                              total);
  check_launch("repeat_rows");
}

void repeat_rows_backward(cudaStream_t stream, const float* dy, int64_t rows, int64_t size,
                          int64_t cols, float* dx) {
  const int64_t total = rows * cols;
  if (total <= 0) return;
  if (rows * size * cols <= INT32_MAX)
    repeat_rows_backward_kernel<int32_t><<<blocks_for(total), kThreads, 0, stream>>>(
        dy, static_cast<int32_t>(size), static_cast<int32_t>(cols), dx, total);
  else
    repeat_rows_backward_kernel<int64_t><<<blocks_for(total), kThreads, 0, stream>>>(
        dy, size, cols, dx, total);
  check_launch("repeat_rows_backward");
}

// y[t] for each output value t = ((n, oy), ox), c: resample_value over image n.
__global__ void resample_kernel(Resample r, const float* __restrict__ x, float* __restrict__ y,
                                int64_t total) {
  for (int64_t t = first_index(); t < total; t += grid_stride()) {
    const int64_t ci = t % r.c, p = t / r.c, ox = p % r.ow, q = p / r.ow, oy = q % r.oh;
    y[t] = resample_value(r, x + (q / r.oh) * (r.h * r.w * r.c), oy, ox, ci);
  }
}

// y[t] for each output value t = ((n, oy), ox), c: sample n's transform or factor recomputed
// by each thread (a few draws: cheaper than a pass that stores them).
__global__ void augment_kernel(Augment a, const uint64_t* __restrict__ seed_in,
                               const float* __restrict__ x, const float* __restrict__ means,
                               float* __restrict__ y, int64_t total) {
  const uint64_t seed = *seed_in;
  for (int64_t t = first_index(); t < total; t += grid_stride()) {
    const int64_t ci = t % a.c, p = t / a.c, ox = p % a.ow, q = p / a.ow, oy = q % a.oh;
    const int64_t n = q / a.oh;
    const float* image = x + n * (a.h * a.w * a.c);
    if (augment_is_geometric(a.kind)) {
      float tr[6];
      augment_transform(a, seed, n, tr);
      y[t] = augment_geometric(a, image, tr, oy, ox, ci);
    } else {
      const float f = augment_factor(a, seed, n);
      y[t] = augment_value(a, image[(oy * a.w + ox) * a.c + ci], means ? means[n * a.c + ci] : 0.f,
                           f);
    }
  }
}

void im2col(cudaStream_t stream, const Window2D& g, const float* x, int64_t batch, float* cols) {
  const int64_t in = batch * g.h * g.w * g.c, out = batch * g.oh * g.ow * g.kh * g.kw * g.c;
  launch(g, in, out, out, "im2col", [&](auto gi) {
    im2col_kernel<<<blocks_for(out), kThreads, 0, stream>>>(gi, x, cols, out);
  });
}

void col2im(cudaStream_t stream, const Window2D& g, const float* cols, int64_t batch, float* dx) {
  const int64_t in = batch * g.h * g.w * g.c, out = batch * g.oh * g.ow * g.kh * g.kw * g.c;
  launch(g, in, out, in, "col2im", [&](auto gi) {
    col2im_kernel<<<blocks_for(in), kThreads, 0, stream>>>(gi, cols, dx, in);
  });
}

void maxpool_forward(cudaStream_t stream, const Window2D& g, const float* x, int64_t batch,
                     float* y, int32_t* argmax) {
  const int64_t in = batch * g.h * g.w * g.c, out = batch * g.oh * g.ow * g.c;
  launch(g, in, out, out, "maxpool_forward", [&](auto gi) {
    maxpool_forward_kernel<<<blocks_for(out), kThreads, 0, stream>>>(gi, x, y, argmax, out);
  });
}

void maxpool_backward(cudaStream_t stream, const Window2D& g, const float* dy,
                      const int32_t* argmax, int64_t batch, float* dx) {
  const int64_t in = batch * g.h * g.w * g.c, out = batch * g.oh * g.ow * g.c;
  launch(g, in, out, in, "maxpool_backward", [&](auto gi) {
    maxpool_backward_kernel<<<blocks_for(in), kThreads, 0, stream>>>(gi, dy, argmax, dx, in);
  });
}

void avgpool_forward(cudaStream_t stream, const Window2D& g, const float* x, int64_t batch,
                     float* y) {
  const int64_t in = batch * g.h * g.w * g.c, out = batch * g.oh * g.ow * g.c;
  launch(g, in, out, out, "avgpool_forward", [&](auto gi) {
    avgpool_forward_kernel<<<blocks_for(out), kThreads, 0, stream>>>(gi, x, y, out);
  });
}

void avgpool_backward(cudaStream_t stream, const Window2D& g, const float* dy, int64_t batch,
                      float* dx) {
  const int64_t in = batch * g.h * g.w * g.c, out = batch * g.oh * g.ow * g.c;
  launch(g, in, out, in, "avgpool_backward", [&](auto gi) {
    avgpool_backward_kernel<<<blocks_for(in), kThreads, 0, stream>>>(gi, dy, dx, in);
  });
}

void resample(cudaStream_t stream, const Resample& r, const float* x, int64_t batch, float* y) {
  const int64_t out = batch * r.oh * r.ow * r.c;
  resample_kernel<<<blocks_for(out), kThreads, 0, stream>>>(r, x, y, out);
  check_launch("resample");
}

void augment(cudaStream_t stream, const Augment& a, const uint64_t* seed, const float* x,
             const float* means, int64_t batch, float* y) {
  const int64_t out = batch * a.oh * a.ow * a.c;
  augment_kernel<<<blocks_for(out), kThreads, 0, stream>>>(a, seed, x, means, y, out);
  check_launch("augment");
}

}  // namespace cuda
}  // namespace deepcore
