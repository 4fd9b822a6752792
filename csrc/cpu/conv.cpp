// CPU kernels for convolutions (im2col / col2im onto the GEMM) and pooling, NHWC.
#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "deepcore/kernels.h"

namespace deepcore {

Window2D make_window(int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t sh,
                     int64_t sw, bool same) {
  Window2D g{h, w, c, kh, kw, sh, sw, 0, 0, 0, 0};
  if (same) {
    g.oh = (h + sh - 1) / sh;
    g.ow = (w + sw - 1) / sw;
    const int64_t ph = std::max<int64_t>((g.oh - 1) * sh + kh - h, 0);
    const int64_t pw = std::max<int64_t>((g.ow - 1) * sw + kw - w, 0);
    g.pad_top = ph / 2;
    g.pad_left = pw / 2;
  } else {
    if (kh > h || kw > w)
      throw std::invalid_argument("window " + std::to_string(kh) + "x" + std::to_string(kw) +
                                  " is larger than the input " + std::to_string(h) + "x" +
                                  std::to_string(w) + " with padding='valid'");
    g.oh = (h - kh) / sh + 1;
    g.ow = (w - kw) / sw + 1;
  }
  return g;
}

void im2col(const Window2D& g, const float* x, int64_t batch, float* cols) {
  const int64_t row = g.kh * g.kw * g.c;
  for (int64_t n = 0; n < batch; ++n) {
    const float* xn = x + n * g.h * g.w * g.c;
    for (int64_t oy = 0; oy < g.oh; ++oy)
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        float* dst = cols + ((n * g.oh + oy) * g.ow + ox) * row;
        for (int64_t ky = 0; ky < g.kh; ++ky) {
          const int64_t iy = oy * g.sh + ky - g.pad_top;
          for (int64_t kx = 0; kx < g.kw; ++kx, dst += g.c) {
            const int64_t ix = ox * g.sw + kx - g.pad_left;
            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w)
              std::fill(dst, dst + g.c, 0.f);
            else
              std::memcpy(dst, xn + (iy * g.w + ix) * g.c, sizeof(float) * g.c);
          }
        }
      }
  }
}

void col2im(const Window2D& g, const float* cols, int64_t batch, float* dx) {
  const int64_t row = g.kh * g.kw * g.c;
  std::fill(dx, dx + batch * g.h * g.w * g.c, 0.f);
  for (int64_t n = 0; n < batch; ++n) {
    float* dn = dx + n * g.h * g.w * g.c;
    for (int64_t oy = 0; oy < g.oh; ++oy)
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        const float* src = cols + ((n * g.oh + oy) * g.ow + ox) * row;
        for (int64_t ky = 0; ky < g.kh; ++ky) {
          const int64_t iy = oy * g.sh + ky - g.pad_top;
          for (int64_t kx = 0; kx < g.kw; ++kx, src += g.c) {
            const int64_t ix = ox * g.sw + kx - g.pad_left;
            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
            float* d = dn + (iy * g.w + ix) * g.c;
#pragma omp simd
            for (int64_t ci = 0; ci < g.c; ++ci) d[ci] += src[ci];
          }
        }
      }
  }
}

// Calls f(out_index, in_index, first) for every valid input position of every window.
template <class F>
static void for_each_window(const Window2D& g, int64_t batch, F&& f) {
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t oy = 0; oy < g.oh; ++oy)
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        const int64_t out = ((n * g.oh + oy) * g.ow + ox) * g.c;
        const int64_t y0 = std::max<int64_t>(oy * g.sh - g.pad_top, 0);
        const int64_t x0 = std::max<int64_t>(ox * g.sw - g.pad_left, 0);
        const int64_t y1 = std::min<int64_t>(oy * g.sh - g.pad_top + g.kh, g.h);
        const int64_t x1 = std::min<int64_t>(ox * g.sw - g.pad_left + g.kw, g.w);
        bool first = true;
        for (int64_t iy = y0; iy < y1; ++iy)
          for (int64_t ix = x0; ix < x1; ++ix, first = false)
            f(out, ((n * g.h + iy) * g.w + ix) * g.c, first, (y1 - y0) * (x1 - x0));
      }
}

void maxpool_forward(const Window2D& g, const float* x, int64_t batch, float* y,
                     int32_t* argmax) {
  for_each_window(g, batch, [&](int64_t out, int64_t in, bool first, int64_t) {
    for (int64_t ci = 0; ci < g.c; ++ci)
      if (first || x[in + ci] > y[out + ci]) {
        y[out + ci] = x[in + ci];
        argmax[out + ci] = static_cast<int32_t>(in + ci - (out / (g.oh * g.ow * g.c)) * g.h * g.w * g.c);
      }
  });
}

void maxpool_backward(const Window2D& g, const float* dy, const int32_t* argmax, int64_t batch,
                      float* dx) {
  const int64_t in_size = g.h * g.w * g.c, out_size = g.oh * g.ow * g.c;
  std::fill(dx, dx + batch * in_size, 0.f);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t i = 0; i < out_size; ++i)
      dx[n * in_size + argmax[n * out_size + i]] += dy[n * out_size + i];
}

void avgpool_forward(const Window2D& g, const float* x, int64_t batch, float* y) {
  std::fill(y, y + batch * g.oh * g.ow * g.c, 0.f);
  for_each_window(g, batch, [&](int64_t out, int64_t in, bool, int64_t count) {
    const float inv = 1.f / static_cast<float>(count);
    for (int64_t ci = 0; ci < g.c; ++ci) y[out + ci] += x[in + ci] * inv;
  });
}

void avgpool_backward(const Window2D& g, const float* dy, int64_t batch, float* dx) {
  std::fill(dx, dx + batch * g.h * g.w * g.c, 0.f);
  for_each_window(g, batch, [&](int64_t out, int64_t in, bool, int64_t count) {
    const float inv = 1.f / static_cast<float>(count);
    for (int64_t ci = 0; ci < g.c; ++ci) dx[in + ci] += dy[out + ci] * inv;
  });
}

}  // namespace deepcore
