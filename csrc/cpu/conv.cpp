// CPU kernels for convolutions (im2col / col2im onto the GEMM) and pooling, NHWC.
#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "deepcore/kernels.h"
#include "deepcore/window_maths.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

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

Window2D make_window_1d(int64_t steps, int64_t c, int64_t k, int64_t s, int64_t d, Padding p) {
  const int64_t span = (k - 1) * d + 1;  // the input positions a window spans
  Window2D g{1, steps, c, 1, k, 1, s, 0, 0, 1, 0};
  g.dw = d;
  if (p == Padding::Valid) {
    if (span > steps)
      throw std::invalid_argument(
          "window of " + std::to_string(k) +
          (d > 1 ? " dilated by " + std::to_string(d) + " (" + std::to_string(span) + " steps)"
                 : std::string()) +
          " is longer than the input's " + std::to_string(steps) + " steps with padding='valid'");
    g.ow = (steps - span) / s + 1;
  } else {
    g.ow = (steps + s - 1) / s;
    g.pad_left = p == Padding::Causal ? span - 1
                                      : std::max<int64_t>((g.ow - 1) * s + span - steps, 0) / 2;
  }
  return g;
}

namespace {

// Copies (or adds) one run of n contiguous floats: a window row of kw * c values.
// (In vectors, the index hidden from the compiler, which would otherwise make the loop a
// call to memmove, whose cost per call dominates runs of a few hundred bytes, im2col's.)
inline void copy_run(float* __restrict d, const float* __restrict s, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(d + i, _mm512_loadu_ps(s + i));
    asm("" : "+r"(i));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(d + i, m, _mm512_maskz_loadu_ps(m, s + i));
  }
#elif defined(__AVX2__)
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(d + i, _mm256_loadu_ps(s + i));
    asm("" : "+r"(i));
  }
  for (; i < n; ++i) d[i] = s[i];
#else
  for (; i < n; ++i) d[i] = s[i];
#endif
}
inline void add_run(float* __restrict d, const float* __restrict s, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) d[i] += s[i];
}

// Calls f(col, in, len) for every run of the window of output (n, oy, ox) that lies in
// the image: `len` floats at input offset `in` (from image n) and at offset `col` of
// the window's im2col row. Runs outside the image are left to the caller (zeros).
template <class F>
inline void window_runs(const Window2D& g, int64_t oy, int64_t ox, F&& f) {
  const int64_t x0 = window::input_at<int64_t>(ox, 0, g.sw, g.pad_left);
  const window::Range<int64_t> kx = window::offsets_inside(ox, g.kw, g.sw, g.pad_left, g.w);
  if (kx.end <= kx.begin) return;
  for (int64_t ky = 0; ky < g.kh; ++ky) {
    const int64_t iy = window::input_at(oy, ky, g.sh, g.pad_top);
    if (iy < 0 || iy >= g.h) continue;
    f((ky * g.kw + kx.begin) * g.c, (iy * g.w + x0 + kx.begin) * g.c,
      (kx.end - kx.begin) * g.c);
  }
}

// Dilated windows: calls f(col, in) for every position of the window of output (oy, ox)
// that lies in the image, in the window's row-major order: c floats at input offset `in`
// and at offset `col` of the window's im2col row.
template <class F>
inline void dilated_positions(const Window2D& g, int64_t oy, int64_t ox, F&& f) {
  for (int64_t ky = 0; ky < g.kh; ++ky) {
    const int64_t iy = window::input_at(oy, ky * g.dh, g.sh, g.pad_top);
    if (iy < 0 || iy >= g.h) continue;
    for (int64_t kx = 0; kx < g.kw; ++kx) {
      const int64_t ix = window::input_at(ox, kx * g.dw, g.sw, g.pad_left);
      if (ix >= 0 && ix < g.w) f((ky * g.kw + kx) * g.c, (iy * g.w + ix) * g.c);
    }
  }
}

bool dilated(const Window2D& g) { return g.dh != 1 || g.dw != 1; }

// Calls f(copy) with the copy of a window's row of len = kw * c floats: few channels (an
// image's first convolution) in one masked move, else copy_run.
template <class F>
void with_run_copy(int64_t len, F&& f) {
#if defined(__AVX512F__)
  if (len <= 16) {
    const __mmask16 m = static_cast<__mmask16>((1u << len) - 1u);
    return f([m](float* d, const float* s) {
      _mm512_mask_storeu_ps(d, m, _mm512_maskz_loadu_ps(m, s));
    });
  }
#elif defined(__AVX2__)
  if (len <= 8) {
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(len)),
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return f([m](float* d, const float* s) { _mm256_maskstore_ps(d, m, _mm256_maskload_ps(s, m)); });
  }
#endif
  f([len](float* d, const float* s) { copy_run(d, s, len); });
}

// The im2col row of output (oy, ox) of image xn: its window's values, zeros outside the image.
void window_row(const Window2D& g, const float* xn, int64_t oy, int64_t ox, float* dst) {
  std::fill(dst, dst + g.kh * g.kw * g.c, 0.f);  // the padding
  if (dilated(g))
    dilated_positions(g, oy, ox,
                      [&](int64_t col, int64_t in) { copy_run(dst + col, xn + in, g.c); });
  else
    window_runs(g, oy, ox, [&](int64_t col, int64_t in, int64_t len) {
      copy_run(dst + col, xn + in, len);
    });
}

void col2im_dilated(const Window2D& g, const float* cols, int64_t batch, float* dx) {
  const int64_t row = g.kh * g.kw * g.c, image = g.h * g.w * g.c;
  std::fill(dx, dx + batch * image, 0.f);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t oy = 0; oy < g.oh; ++oy)
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        const float* src = cols + ((n * g.oh + oy) * g.ow + ox) * row;
        dilated_positions(g, oy, ox, [&](int64_t col, int64_t in) {
          add_run(dx + n * image + in, src + col, g.c);
        });
      }
}

}  // namespace

void im2col_pooled(const Window2D& g, const Window2D& p, const float* x, int64_t batch,
                   float* cols) {
  const int64_t row = g.kh * g.kw * g.c, image = g.h * g.w * g.c;
  // Calls f(dst, n, oy, ox) for each row in turn.
  auto rows = [&](auto&& f) {
    float* dst = cols;
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t py = 0; py < p.oh; ++py)
        for (int64_t px = 0; px < p.ow; ++px) {
          const int64_t oy = py * p.sh, ox = px * p.sw;
          if (p.kh == 1 && p.kw == 1) {  // (im2col's order)
            f(dst, n, oy, ox);
            dst += row;
            continue;
          }
          for (int64_t dy = 0; dy < p.kh; ++dy)
            for (int64_t dx = 0; dx < p.kw; ++dx, dst += row) f(dst, n, oy + dy, ox + dx);
        }
  };
  if (!windows_inside(g))
    return rows([&](float* dst, int64_t n, int64_t oy, int64_t ox) {
      window_row(g, x + n * image, oy, ox, dst);
    });
  // Every window lies in the image: kh runs of kw * c floats each.
  const int64_t len = g.kw * g.c, stride = g.w * g.c;
  with_run_copy(len, [&](auto&& copy) {
    rows([&](float* dst, int64_t n, int64_t oy, int64_t ox) {
      const float* src = x + n * image + oy * g.sh * stride + ox * g.sw * g.c;
      for (int64_t ky = 0; ky < g.kh; ++ky) copy(dst + ky * len, src + ky * stride);
    });
  });
}

void im2col(const Window2D& g, const float* x, int64_t batch, float* cols) {
  Window2D each;  // every output position, each a window of its own, in row-major order
  each.oh = g.oh;
  each.ow = g.ow;
  im2col_pooled(g, each, x, batch, cols);
}

void col2im(const Window2D& g, const float* cols, int64_t batch, float* dx) {
  if (dilated(g)) return col2im_dilated(g, cols, batch, dx);
  const int64_t row = g.kh * g.kw * g.c, image = g.h * g.w * g.c;
  std::fill(dx, dx + batch * image, 0.f);
  for (int64_t n = 0; n < batch; ++n) {
    float* dn = dx + n * image;
    for (int64_t oy = 0; oy < g.oh; ++oy)
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        const float* src = cols + ((n * g.oh + oy) * g.ow + ox) * row;
        window_runs(g, oy, ox, [&](int64_t col, int64_t in, int64_t len) {
          add_run(dn + in, src + col, len);
        });
      }
  }
}

// Calls f(n, out, in, first, count) for every valid position of every window of image
// n: out is the offset of the window's output (first channel), in the position's
// offset in image n, first whether it is the window's first valid position and count
// how many valid positions the window has.
template <class F>
static void for_each_window(const Window2D& g, int64_t batch, F&& f) {
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t oy = 0; oy < g.oh; ++oy)
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        const int64_t out = ((n * g.oh + oy) * g.ow + ox) * g.c;
        const window::Range<int64_t> ys = window::window_inside(oy, g.kh, g.sh, g.pad_top, g.h);
        const window::Range<int64_t> xs = window::window_inside(ox, g.kw, g.sw, g.pad_left, g.w);
        bool first = true;
        for (int64_t iy = ys.begin; iy < ys.end; ++iy)
          for (int64_t ix = xs.begin; ix < xs.end; ++ix, first = false)
            f(n, out, (iy * g.w + ix) * g.c, first,
              (ys.end - ys.begin) * (xs.end - xs.begin));
      }
}

void maxpool_forward(const Window2D& g, const float* x, int64_t batch, float* y,
                     int32_t* argmax) {
  const int64_t image = g.h * g.w * g.c;
  for_each_window(g, batch, [&](int64_t n, int64_t out, int64_t in, bool first, int64_t) {
    const float* __restrict xi = x + n * image + in;
    float* __restrict yo = y + out;
    int32_t* __restrict ao = argmax + out;
    const int32_t base = static_cast<int32_t>(in);
    if (first) {
#pragma omp simd
      for (int64_t ci = 0; ci < g.c; ++ci) {
        yo[ci] = xi[ci];
        ao[ci] = base + static_cast<int32_t>(ci);
      }
      return;
    }
#pragma omp simd
    for (int64_t ci = 0; ci < g.c; ++ci) {
      const bool more = window::beats(xi[ci], yo[ci]);
      ao[ci] = more ? base + static_cast<int32_t>(ci) : ao[ci];
      yo[ci] = more ? xi[ci] : yo[ci];
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
  const int64_t image = g.h * g.w * g.c;
  std::fill(y, y + batch * g.oh * g.ow * g.c, 0.f);
  for_each_window(g, batch, [&](int64_t n, int64_t out, int64_t in, bool, int64_t count) {
    const float inv = window::average_weight(count);
    const float* __restrict xi = x + n * image + in;
    float* __restrict yo = y + out;
#pragma omp simd
    for (int64_t ci = 0; ci < g.c; ++ci) yo[ci] += xi[ci] * inv;
  });
}

// In two passes over each image, with the same sums in the same order as resample_value:
// each input row's column sums t (h x ow x c) first, then each output row the sum over its
// row taps of weight * t, whole rows at a time (loops that vectorize).
void resample(const Resample& r, const float* x, int64_t batch, float* y) {
  const int64_t in = r.h * r.w * r.c, out = r.oh * r.ow * r.c, row = r.ow * r.c;
  thread_local std::vector<float> rows_buffer;
  if (int64_t(rows_buffer.size()) < r.h * row) rows_buffer.resize(size_t(r.h * row));
  float* t = rows_buffer.data();
  for (int64_t n = 0; n < batch; ++n) {
    const float* xn = x + n * in;
    for (int64_t iy = 0; iy < r.h; ++iy) {
      float* __restrict ti = t + iy * row;
      std::fill(ti, ti + row, 0.f);
      for (int64_t ox = 0; ox < r.ow; ++ox)
        for (int32_t b = r.x.start[ox]; b < r.x.start[ox + 1]; ++b) {
          const float wb = r.x.weight[b];
          const float* __restrict xi = xn + (iy * r.w + r.x.index[b]) * r.c;
#pragma omp simd
          for (int64_t ci = 0; ci < r.c; ++ci) ti[ox * r.c + ci] += wb * xi[ci];
        }
    }
    for (int64_t oy = 0; oy < r.oh; ++oy) {
      float* __restrict yo = y + n * out + oy * row;
      std::fill(yo, yo + row, 0.f);
      for (int32_t a = r.y.start[oy]; a < r.y.start[oy + 1]; ++a) {
        const float wa = r.y.weight[a];
        const float* __restrict ta = t + int64_t(r.y.index[a]) * row;
#pragma omp simd
        for (int64_t e = 0; e < row; ++e) yo[e] += wa * ta[e];
      }
    }
  }
}

void augment(const Augment& a, uint64_t seed, const float* x, const float* means, int64_t begin,
             int64_t end, float* y) {
  const int64_t in = a.h * a.w * a.c, out = a.oh * a.ow * a.c;
  for (int64_t n = begin; n < end; ++n) {
    const float* xn = x + n * in;
    float* yn = y + n * out;
    if (augment_is_geometric(a.kind)) {
      float t[6];
      augment_transform(a, seed, n, t);
      for (int64_t oy = 0; oy < a.oh; ++oy)
        for (int64_t ox = 0; ox < a.ow; ++ox)
          for (int64_t ci = 0; ci < a.c; ++ci) *yn++ = augment_geometric(a, xn, t, oy, ox, ci);
    } else {
      const float f = augment_factor(a, seed, n);
      for (int64_t e = 0; e < in; ++e)
        yn[e] = augment_value(a, xn[e], means ? means[n * a.c + e % a.c] : 0.f, f);
    }
  }
}

void repeat_rows(const float* x, int64_t rows, int64_t size, int64_t cols, float* y) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < size; ++j) copy_run(y + (r * size + j) * cols, x + r * cols, cols);
}

void repeat_rows_backward(const float* dy, int64_t rows, int64_t size, int64_t cols, float* dx) {
  for (int64_t r = 0; r < rows; ++r) {
    float* d = dx + r * cols;
    copy_run(d, dy + r * size * cols, cols);
    for (int64_t j = 1; j < size; ++j) add_run(d, dy + (r * size + j) * cols, cols);
  }
}

void avgpool_backward(const Window2D& g, const float* dy, int64_t batch, float* dx) {
  const int64_t image = g.h * g.w * g.c;
  std::fill(dx, dx + batch * image, 0.f);
  for_each_window(g, batch, [&](int64_t n, int64_t out, int64_t in, bool, int64_t count) {
    const float inv = window::average_weight(count);
    const float* __restrict dyo = dy + out;
    float* __restrict di = dx + n * image + in;
#pragma omp simd
    for (int64_t ci = 0; ci < g.c; ++ci) di[ci] += dyo[ci] * inv;
  });
}

}  // namespace deepcore
