// The CPU's fused convolution and max pooling of inference (Backend::conv_maxpool_forward):
// windows read where they lie in the images (padded images padded once per tile), our
// kernel's maxima in registers, Winograd's tiles for 3x3 convolutions. Internal header of
// cpu/backend.cpp, compiled once per kernel set; the vector sets' only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "deepcore/kernels.h"
#include "parallel.h"
#include "small_gemm.h"
#include "winograd.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
namespace deepcore {
namespace {

// The outputs Winograd's 2x2 tiles leave of an unpooled convolution (windows g in the
// images x) with an odd height or width: its last row, its last column, by our kernel.
inline void conv_edges(const ConvPool& s, const Window2D& g, const float* x, int64_t batch,
                       float* y) {
  const int64_t rows = g.oh - g.oh % 2, f = s.filters, in = g.h * g.w * g.c;
  thread_local std::vector<int64_t> at;  // each edge output's place in the outputs
  at.clear();
  for (int64_t j = 0; g.oh % 2 && j < g.ow; ++j) at.push_back(rows * g.ow + j);
  for (int64_t i = 0; g.ow % 2 && i < rows; ++i) at.push_back(i * g.ow + g.ow - 1);
  const int64_t edges = static_cast<int64_t>(at.size());
  const int64_t* place = at.data();  // (the workers' own thread_local `at` is not this one)
  auto rows_of = [&](int64_t e0, int64_t e1, const float** r) {
    for (int64_t e = e0; e < e1; ++e) {
      const int64_t o = place[e % edges];
      *r++ = x + e / edges * in + (o / g.ow * g.w + o % g.ow) * g.c;
    }
  };
  thread_local std::vector<float> out;
  out.resize(size_t(batch * edges * f));
  pooled_gemm(batch * edges, 1, ARuns{g.kw * g.c, g.kh, g.w * g.c}, f, rows_of, s.w, ep_of(s),
              out.data());
  for (int64_t e = 0; e < batch * edges; ++e)
    std::copy_n(out.data() + e * f, f, y + (e / edges * g.oh * g.ow + place[e % edges]) * f);
}

// conv_maxpool_forward of windows g that lie in the images x: the kernel reads each
// window where it is (kh runs of kw * c floats), no im2col; or Winograd's tiles where
// winograd_fits.
inline void conv_pool_in_place(const ConvPool& s, const Window2D& g, const float* x,
                               int64_t batch, float* y) {
  if (winograd_fits(s)) {
    winograd_conv(s, g, x, batch, y);
    if (s.pool.kh == 1 && (g.oh % 2 || g.ow % 2)) conv_edges(s, g, x, batch, y);
    return;
  }
  const Window2D& p = s.pool;
  const int64_t windows = p.oh * p.ow, window = p.kh * p.kw, in = g.h * g.w * g.c;
  // Where each pooling window's first convolution window starts in its image, and where
  // each of its positions' starts from there (no division per row).
  thread_local std::vector<int64_t> at;
  at.resize(size_t(windows + window));
  for (int64_t w = 0; w < windows; ++w)
    at[w] = (w / p.ow * p.sh * g.sh * g.w + w % p.ow * p.sw * g.sw) * g.c;
  for (int64_t d = 0; d < window; ++d)
    at[windows + d] = (d / p.kw * g.sh * g.w + d % p.kw * g.sw) * g.c;
  const int64_t* first = at.data();
  const int64_t* offset = first + windows;
  auto rows_of = [&](int64_t w0, int64_t w1, const float** rows) {
    int64_t n = w0 / windows, w = w0 % windows;
    for (int64_t v = w0; v < w1; ++v) {
      const float* base = x + n * in + first[w];
      for (int64_t d = 0; d < window; ++d) *rows++ = base + offset[d];
      if (++w == windows) w = 0, ++n;
    }
  };
  pooled_gemm(batch * windows, window, ARuns{g.kw * g.c, g.kh, g.w * g.c}, s.filters, rows_of,
              s.w, ep_of(s), y);
}

// The `batch` images x as window g reads them, zeros around, into out; the window over
// them (no padding: every window inside).
inline Window2D pad_images(const Window2D& g, const float* x, int64_t batch, float* out) {
  Window2D p = g;
  p.h = (g.oh - 1) * g.sh + g.kh;
  p.w = (g.ow - 1) * g.sw + g.kw;
  p.pad_top = p.pad_left = 0;
  const int64_t row = g.w * g.c, prow = p.w * p.c;
  const int64_t x0 = std::min(g.pad_left, p.w);
  const int64_t len = std::max<int64_t>(0, std::min(g.w, p.w - x0)) * g.c;
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t i = 0; i < p.h; ++i) {
      float* d = out + (n * p.h + i) * prow;
      const int64_t iy = i - g.pad_top;
      if (iy < 0 || iy >= g.h || len == 0) {
        std::fill(d, d + prow, 0.f);
        continue;
      }
      std::fill(d, d + x0 * p.c, 0.f);
      std::memcpy(d + x0 * p.c, x + (n * g.h + iy) * row, sizeof(float) * len);
      std::fill(d + x0 * p.c + len, d + prow, 0.f);
    }
  return p;
}

// Backend::conv_maxpool_forward: y (the pooling's windows x filters) of the batch images x,
// tiles of `tile` images through the scratch cols where the windows read padding.
inline void conv_maxpool(const ConvPool& s, const float* x, int64_t batch, int64_t tile,
                         float* cols, float* y) {
  const Window2D &g = s.conv, &p = s.pool;
  const int64_t k = g.kh * g.kw * g.c, out = p.oh * p.ow * s.filters;
  if (windows_inside(g)) return conv_pool_in_place(s, g, x, batch, y);
  // Tiles shared among the threads (one tile: its panels are); images are independent.
  const int64_t per = conv_pool_scratch(g, p);
  parallel_for((batch + tile - 1) / tile, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t n0 = t0 * tile; n0 < std::min(batch, t1 * tile); n0 += tile) {
      const int64_t n = std::min(tile, batch - n0);
      float* c = cols + n0 * per;
      if (g.dh == 1 && g.dw == 1) {  // padding: the tile's images padded with zeros, in place
        const Window2D padded = pad_images(g, x + n0 * g.h * g.w * g.c, n, c);
        conv_pool_in_place(s, padded, c, n, y + n0 * out);
        continue;
      }
      const int64_t window = p.kh * p.kw;
      deepcore::im2col_pooled(g, p, x + n0 * g.h * g.w * g.c, n, c);
      auto rows_of = [&](int64_t w0, int64_t w1, const float** rows) {
        for (int64_t r = w0 * window; r < w1 * window; ++r) *rows++ = c + r * k;
      };
      pooled_gemm(n * p.oh * p.ow, window, ARuns{k, 1, 0}, s.filters, rows_of, s.w, ep_of(s),
                  y + n0 * out);
    }
  });
}

}  // namespace
}  // namespace deepcore
#endif
