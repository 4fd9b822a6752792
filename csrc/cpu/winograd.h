// Winograd's F(2x2, 3x3) for the 3x3 convolutions of stride 1 of CPU inference: those whose
// outputs a 2x2 max pooling reads (the Keras tutorials' CNN block, Conv2D(f, 3) then
// MaxPooling2D()), each pooling window's four outputs one tile, and those without pooling
// (2x2 outputs a tile; an odd last row or column is the direct kernel's: conv_pool.h's
// conv_edges). A tile's 4x4 input patch is transformed (B^T d B),
// multiplied by the transformed kernels (G g G^T) position by position (16 products of tiles
// x channels by channels x filters, our kernel) and transformed back (A^T m A), + bias,
// relu (and the maximum): 2.25 times fewer multiply-adds than the direct convolution, ~2e-7
// relative apart from it (not its bits). Each tile's values depend on its own patch alone,
// so predictions stay the same bits for any batch size, piece or thread count. Internal
// header of cpu/backend.cpp, compiled once per kernel set.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "deepcore/kernels.h"
#include "parallel.h"
#include "small_gemm.h"

namespace deepcore {
namespace {

// Below these, the 16 products are too small to pay for the transforms (measured on one
// core, predict of 512 images of 20 x 20: c 8 to f 16 1.4x slower than the direct kernel,
// 16 to 16 as fast, 8 to 32 1.1x, 16 to 32 1.4x, 32 to 32 1.5x faster; a first
// convolution's single channel would only be slower).
constexpr int64_t kWinogradChannels = 8, kWinogradFilters = 16, kWinogradWeights = 256;
// Tiles per panel: their transformed inputs and products stay in L2.
constexpr int64_t kWinogradTiles = 24;

// Whether conv_maxpool_forward takes s through winograd_conv: a 3x3 convolution of stride 1
// whose outputs a 2x2 max pooling reads (its windows within them), or whose outputs are all
// stored (no pooling: a window of one position; an odd last row or column is left to the
// direct kernel).
inline bool winograd_fits(const ConvPool& s) {
  const Window2D &g = s.conv, &p = s.pool;
  const bool pooled = p.kh == 2 && p.kw == 2 && p.sh == 2 && p.sw == 2 && p.pad_top == 0 &&
                      p.pad_left == 0 && 2 * p.oh <= g.oh && 2 * p.ow <= g.ow;
  const bool plain = p.kh == 1 && p.kw == 1 && p.sh == 1 && p.sw == 1 && g.oh >= 2 && g.ow >= 2;
  return g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         (pooled || plain) && g.c >= kWinogradChannels && s.filters >= kWinogradFilters &&
         g.c * s.filters >= kWinogradWeights;
}

// The floats between two of the 16 matrices of a transform (rows x cols each): theirs and
// a cache line, so that the 16 are not a multiple of 4 KB apart (LeNet's kernels, 32 x 64:
// winograd_kernels' 16 streams fell in one set of L1 and took 2.5 times as long).
inline int64_t plane_of(int64_t rows, int64_t cols) { return rows * cols + 16; }

// u (16 matrices c x f, plane_of(c, f) apart, one per position of the 4x4 tile) = G g G^T
// of each 3x3 kernel g of w (3 x 3 x c x f, Keras' layout).
inline void winograd_kernels(const float* w, int64_t c, int64_t f, float* u) {
  const int64_t cf = c * f, plane = plane_of(c, f);
  for (int64_t ch = 0; ch < c; ++ch) {
    const float* __restrict g = w + ch * f;
    float* __restrict o = u + ch * f;
#pragma omp simd
    for (int64_t j = 0; j < f; ++j) {
      float t[4][3];  // G g
      for (int s = 0; s < 3; ++s) {
        const float g0 = g[s * cf + j], g1 = g[(3 + s) * cf + j], g2 = g[(6 + s) * cf + j];
        t[0][s] = g0;
        t[1][s] = 0.5f * (g0 + g1 + g2);
        t[2][s] = 0.5f * (g0 - g1 + g2);
        t[3][s] = g2;
      }
      for (int r = 0; r < 4; ++r) {  // (G g) G^T
        o[(r * 4 + 0) * plane + j] = t[r][0];
        o[(r * 4 + 1) * plane + j] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
        o[(r * 4 + 2) * plane + j] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
        o[(r * 4 + 3) * plane + j] = t[r][2];
      }
    }
  }
}

// v (16 matrices tiles x c, plane_of apart) = B^T d B of each tile's 4x4 patch d (top-left
// corner at patch[t], rows `row` floats apart, c channels per position).
inline void winograd_inputs(const float* const* patch, int64_t tiles, int64_t c, int64_t row,
                            float* v) {
  const int64_t plane = plane_of(tiles, c);
  for (int64_t t = 0; t < tiles; ++t) {
    const float* __restrict d = patch[t];
    float* __restrict o = v + t * c;
#pragma omp simd
    for (int64_t ch = 0; ch < c; ++ch) {
      float b[4][4];  // B^T d
      for (int s = 0; s < 4; ++s) {
        const float d0 = d[s * c + ch], d1 = d[row + s * c + ch];
        const float d2 = d[2 * row + s * c + ch], d3 = d[3 * row + s * c + ch];
        b[0][s] = d0 - d2;
        b[1][s] = d1 + d2;
        b[2][s] = d2 - d1;
        b[3][s] = d1 - d3;
      }
      for (int r = 0; r < 4; ++r) {
        o[(r * 4 + 0) * plane + ch] = b[r][0] - b[r][2];
        o[(r * 4 + 1) * plane + ch] = b[r][1] + b[r][2];
        o[(r * 4 + 2) * plane + ch] = b[r][2] - b[r][1];
        o[(r * 4 + 3) * plane + ch] = b[r][1] - b[r][3];
      }
    }
  }
}

// Each tile's outputs (f values each), from its 16 products m (16 matrices tiles x f,
// plane_of apart): A^T m A + bias (relu), then, pooled, their maximum in the pooling's
// row-major order at out[t]; else the four at out[t], out[t] + f (the next column) and
// out[t] + row, out[t] + row + f (the next row).
template <bool Bias, bool Relu, bool Pooled>
void winograd_outputs(const float* m, int64_t tiles, int64_t f, const float* bias,
                      float* const* out, int64_t row) {
  const int64_t plane = plane_of(tiles, f);
  for (int64_t t = 0; t < tiles; ++t) {
    const float* __restrict p = m + t * f;
    float* __restrict o = out[t];
#pragma omp simd
    for (int64_t j = 0; j < f; ++j) {
      float a[2][4];  // A^T m
      for (int s = 0; s < 4; ++s) {
        const float m0 = p[s * plane + j], m1 = p[(4 + s) * plane + j];
        const float m2 = p[(8 + s) * plane + j], m3 = p[(12 + s) * plane + j];
        a[0][s] = m0 + m1 + m2;
        a[1][s] = m1 - m2 - m3;
      }
      auto fin = [&](float v) {  // as bias_act finishes a value
        if (Bias) v += bias[j];
        return Relu ? (v > 0.f ? v : 0.f) : v;
      };
      const float y00 = fin(a[0][0] + a[0][1] + a[0][2]), y01 = fin(a[0][1] - a[0][2] - a[0][3]);
      const float y10 = fin(a[1][0] + a[1][1] + a[1][2]), y11 = fin(a[1][1] - a[1][2] - a[1][3]);
      if (Pooled) {
        float best = window::beats(y01, y00) ? y01 : y00;
        best = window::beats(y10, best) ? y10 : best;
        o[j] = window::beats(y11, best) ? y11 : best;
      } else {
        o[j] = y00, o[f + j] = y01, o[row + j] = y10, o[row + f + j] = y11;
      }
    }
  }
}

template <bool Pooled>
void winograd_outputs(const float* m, int64_t tiles, int64_t f, Epilogue ep, float* const* out,
                      int64_t row) {
  if (ep.bias)
    ep.relu ? winograd_outputs<true, true, Pooled>(m, tiles, f, ep.bias, out, row)
            : winograd_outputs<true, false, Pooled>(m, tiles, f, ep.bias, out, row);
  else
    ep.relu ? winograd_outputs<false, true, Pooled>(m, tiles, f, ep.bias, out, row)
            : winograd_outputs<false, false, Pooled>(m, tiles, f, ep.bias, out, row);
}

// What the fused convolution applies to its outputs as it stores them: its bias, relu.
inline Epilogue ep_of(const ConvPool& s) { return {s.bias, s.act.kind == Act::Relu}; }

// Where winograd_conv's tiles lie: tile t of the images at tile row (t % per_image) / across,
// column t % across of image t / per_image (its input patch two rows and columns further per
// tile); pooled: one output per tile, the pooling's window; else its 2x2 outputs.
struct Tiles {
  int64_t across = 0, per_image = 0;
  bool pooled = false;
};

inline Tiles tiles_of(const ConvPool& s) {
  const bool pooled = s.pool.kh == 2;
  const int64_t rows = pooled ? s.pool.oh : s.conv.oh / 2;
  const int64_t across = pooled ? s.pool.ow : s.conv.ow / 2;
  return {across, rows * across, pooled};
}

// y's outputs of tiles [t0, t0 + n) of the images x, from the transformed kernels u: the
// patches transformed into v, the 16 products into m, transformed back.
inline void winograd_panel(const ConvPool& s, const Window2D& g, Tiles tl, const float* x,
                           int64_t t0, int64_t n, const float* u, float* y) {
  const int64_t c = g.c, f = s.filters, in = g.h * g.w * c;
  const int64_t out = tl.pooled ? tl.per_image * f : g.oh * g.ow * f;
  thread_local std::vector<float> v, m;
  thread_local std::vector<const float*> patch;
  thread_local std::vector<float*> outs;
  v.resize(size_t(16 * plane_of(n, c)));
  m.resize(size_t(16 * plane_of(n, f)));
  patch.resize(size_t(n));
  outs.resize(size_t(n));
  for (int64_t t = 0; t < n; ++t) {
    const int64_t image = (t0 + t) / tl.per_image, k = (t0 + t) % tl.per_image;
    const int64_t i = k / tl.across, j = k % tl.across;
    patch[t] = x + image * in + (2 * i * g.w + 2 * j) * c;
    outs[t] = y + image * out + (tl.pooled ? k : 2 * i * g.ow + 2 * j) * f;
  }
  winograd_inputs(patch.data(), n, c, g.w * c, v.data());
  for (int64_t xi = 0; xi < 16; ++xi)
    small_gemm_nn<false>(n, f, c, 1.f, v.data() + xi * plane_of(n, c), c, u + xi * plane_of(c, f),
                         f, 0.f, m.data() + xi * plane_of(n, f), f, {});
  if (tl.pooled)
    winograd_outputs<true>(m.data(), n, f, ep_of(s), outs.data(), 0);
  else
    winograd_outputs<false>(m.data(), n, f, ep_of(s), outs.data(), g.ow * f);
}

// The kernels of s as the tiles take them, in this thread's own buffer.
inline const float* winograd_kernels_here(const ConvPool& s) {
  thread_local std::vector<float> u;
  const int64_t c = s.conv.c, f = s.filters;
  u.resize(size_t(16 * plane_of(c, f)));
  winograd_kernels(s.w, c, f, u.data());
  return u.data();
}

// y (the pooling's windows, or the convolution's outputs, x f) for the images x whose 3x3
// convolution windows lie in the image (g: no padding; a padded convolution's images padded
// first). Panels of tiles are shared among the threads, which read the kernels the caller
// transformed; a few tiles (a sample's predict) go in one panel per thread, each
// transforming the kernels itself (reading the caller's from another core's cache cost more).
inline void winograd_conv(const ConvPool& s, const Window2D& g, const float* x, int64_t batch,
                          float* y) {
  const Tiles tl = tiles_of(s);
  const int64_t c = g.c, f = s.filters, tiles = batch * tl.per_image;
  auto panels = [&](int64_t per, const float* u, int64_t q0, int64_t q1) {
    for (int64_t t0 = q0 * per; t0 < std::min(tiles, q1 * per); t0 += per)
      winograd_panel(s, g, tl, x, t0, std::min(per, tiles - t0), u, y);
  };
  if (tiles < kMinPanels * kWinogradTiles) {
    const int64_t parts = std::min<int64_t>(pool_threads(), (tiles + 5) / 6);
    const int64_t per = (tiles + parts - 1) / parts;
    parallel_for(parts, 1, [&](int64_t q0, int64_t q1) {
      panels(per, winograd_kernels_here(s), q0, q1);
    });
    return;
  }
  const float* u = winograd_kernels_here(s);
  const int64_t grain = std::max<int64_t>(1, kMinMacs / (kWinogradTiles * 16 * c * f));
  parallel_for((tiles + kWinogradTiles - 1) / kWinogradTiles, grain,
               [&](int64_t q0, int64_t q1) { panels(kWinogradTiles, u, q0, q1); });
}

}  // namespace
}  // namespace deepcore
