// Our register-blocked GEMM kernel (the CPU backend's products where the BLAS library's
// cost per call or packing dominates) and the products built on it: a convolution's rows
// read in place (gather_gemm) and max pooling over them (pooled_gemm). Internal header of
// cpu/backend.cpp, compiled once per kernel set.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "deepcore/window_maths.h"
#include "parallel.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace deepcore {
namespace {

// The register-blocked kernel below beats the BLAS library when the call overhead
// dominates (below 48^3 multiply-adds), when A has a few rows only, when C is small enough
// to stay in registers while A^T and B stream past (convolutions' weight gradients), and,
// on AVX-512, whenever B (not transposed) is within kStreamedB and k is at least 64: each
// panel of A's rows (or A^T's columns, read in place) streams B from L2 or L3, while the
// BLAS library packs both operands and zeroes C at every call. Measured on one core of an
// AMD EPYC (Zen 4, 1 MB of L2, 32 MB of L3), operands hot: 128 x 784 x 512 115 vs 100
// GFLOP/s, A^T 784 x 128 x 512 113 vs 102, 1024^3 108 vs 97; B of 8 MB and more lost (2048^3
// 69 vs 99, A^T 1024 x 2048 x 1024 61 vs 92), sums of 32 (an LSTM's weight gradients) 2%
// slower, the AVX2 blocks far slower (the MNIST MLP's step 3.45 -> 5.5 ms). The MNIST MLP's
// training step 3.52 -> 3.12 ms, LeNet's 15.5 -> 13.8 ms. op(B) transposed is copied first
// (its product stays with the library unless small).
constexpr int64_t kSmallGemm = 48 * 48 * 48;
constexpr int64_t kL2Panel = 20 * 1024;
constexpr int64_t kRegisterPanel = 32 * 64;
constexpr int64_t kFewRows = 32, kL2Weights = 256 * 1024;
#if defined(__AVX512F__)
constexpr int64_t kStreamedB = 1024 * 1024;
#else
constexpr int64_t kStreamedB = 0;
#endif

bool use_small_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
  if (m * n * k <= kSmallGemm) return true;
  if (!ta && !tb && m <= 4) return true;  // a few rows (predicting one sample): B streams once
  // Up to a panel of rows against weights that stay in L2 (predict's pieces through a CNN's
  // first Dense layer): packing B would cost more than the product.
  if (!ta && !tb && m <= kFewRows && k * n <= kL2Weights) return true;
  if (!tb && k * n <= kStreamedB && k >= 64) return true;
  return ta ? m * n <= kRegisterPanel : k * n <= kL2Panel;
}

// Rows per panel of the small kernel: a multiple of every block height below.
constexpr int64_t kPanel = 24;

// What the small kernel applies to C as it stores it: + bias per column, then relu.
// The same operations, in the same order, as a separate bias_act pass.
struct Epilogue {
  const float* bias = nullptr;
  bool relu = false;
};

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))

#if defined(__AVX512F__)
// The vectors of the AVX-512 kernel set: 16 floats, masked by bits; 32 registers hold up
// to 4 vectors of columns for 6 rows (24 accumulators, B's row and A's broadcast value:
// the LeNet CNN's second convolution, 484 x 288 x 64, 122 GFLOP/s on one core in blocks of
// 4 rows, 162 in blocks of 6). Narrower blocks keep the AVX2 set's heights (12 rows for 1
// or 2 vectors measured no faster, and slower on the small networks' steps).
struct Vec {
  static constexpr int kWidth = 16, kMaxCols = 4;
  static constexpr int kRowCols = 30;  // a single row's widest block (row_blocks)
  static constexpr int rows(int nv) { return nv == 1 ? 8 : (nv == 2 ? 6 : (nv == 3 ? 4 : 6)); }
  // Rows of the blocks that take max pooling's maxima in registers (whole windows of them)
  static constexpr int pooled_rows(int nv) { return nv <= 3 ? 8 : 6; }
  using V = __m512;
  using M = __mmask16;
  static M mask(int64_t left) { return static_cast<__mmask16>((1u << left) - 1u); }
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(M m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(M m, float* p, V v) { _mm512_mask_storeu_ps(p, m, v); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V relu(V v) {  // v > 0 ? v : 0, as bias_act does (NaN gives 0)
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), v);
  }
  static V max_of(V v, V best) {  // v > best ? v : best (window::beats)
    return _mm512_mask_mov_ps(best, _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ), v);
  }
};
#else
// The AVX2 kernel set's: 8 floats, masked by lanes; 16 registers hold up to 3 vectors of
// columns for 4 rows.
struct Vec {
  static constexpr int kWidth = 8, kMaxCols = 3;
  static constexpr int kRowCols = 14;
  static constexpr int rows(int nv) { return nv == 1 ? 8 : (nv == 2 ? 6 : 4); }
  static constexpr int pooled_rows(int nv) { return rows(nv); }
  using V = __m256;
  using M = __m256i;
  static M mask(int64_t left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(M m, const float* p) { return _mm256_maskload_ps(p, m); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(M m, float* p, V v) { _mm256_maskstore_ps(p, m, v); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V relu(V v) {  // v > 0 ? v : 0, as bias_act does (NaN gives 0)
    return _mm256_and_ps(v, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ));
  }
  static V max_of(V v, V best) {  // v > best ? v : best (window::beats)
    return _mm256_blendv_ps(best, v, _mm256_cmp_ps(v, best, _CMP_GT_OQ));
  }
};
#endif
constexpr int64_t kW = Vec::kWidth;

// A block's column masks (C's columns j0.. within n) and its accumulators at zero.
template <int MR, int NV>
inline void start_block(int64_t n, int64_t j0, Vec::M (&mask)[NV], Vec::V (&acc)[MR][NV]) {
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v)
    mask[v] = Vec::mask(std::min<int64_t>(kW, std::max<int64_t>(0, n - j0 - kW * v)));
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = Vec::zero();
}

// A vector of C as stored: alpha * acc + beta * C (cv: C's values, read only when beta is
// not 0), + bias (from column col), relu.
inline Vec::V finish(Vec::V acc, float alpha, float beta, Vec::M m, const float* cv,
                     Epilogue ep, int64_t col) {
  Vec::V out = Vec::mul(Vec::set1(alpha), acc);
  if (beta != 0.f) out = Vec::fmadd(Vec::set1(beta), Vec::load(m, cv), out);
  if (ep.bias) out = Vec::add(out, Vec::load(m, ep.bias + col));
  if (ep.relu) out = Vec::relu(out);
  return out;
}

// C's rows c[0:MR, j0:j0+kW*NV] = alpha * acc + beta * C, + bias per column, relu (ep).
template <int MR, int NV>
inline void store_block(const Vec::V (&acc)[MR][NV], const Vec::M (&mask)[NV], float alpha,
                        float beta, float* c, int64_t ldc, int64_t j0, Epilogue ep) {
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * ldc + j0;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      Vec::store(mask[v], cr + kW * v,
                 finish(acc[r][v], alpha, beta, mask[v], cr + kW * v, ep, j0 + kW * v));
  }
}

// The block's rows as store_block finishes them (alpha 1, beta 0), then the maximum of each
// `pool` consecutive rows (MR of them, a multiple of pool) taken in row order as maxpool_forward
// takes it, stored as one row of y (y's rows ldy apart).
template <int MR, int NV>
inline void store_pooled(const Vec::V (&acc)[MR][NV], const Vec::M (&mask)[NV], int64_t pool,
                         float* y, int64_t ldy, int64_t j0, Epilogue ep) {
  Vec::V best[NV];
  int64_t at = 0;  // the row's place in its window
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const Vec::V x = finish(acc[r][v], 1.f, 0.f, mask[v], nullptr, ep, j0 + kW * v);
      best[v] = at == 0 ? x : Vec::max_of(x, best[v]);
    }
    if (++at == pool) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) Vec::store(mask[v], y + j0 + kW * v, best[v]);
      y += ldy;
      at = 0;
    }
  }
}

// C[i0:i0+MR, j0:j0+kW*NV] = alpha * op(A) B + beta * C, with B row-major (k x n).
// MR * NV accumulators stay in registers for the whole k loop; masked loads and
// stores handle the last columns without reading or writing past the row.
template <bool TA, int MR, int NV>
void small_block(int64_t i0, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int64_t j0,
                 Epilogue ep) {
  Vec::M mask[NV];
  Vec::V acc[MR][NV];
  start_block<MR, NV>(n, j0, mask, acc);
  for (int64_t p = 0; p < k; ++p) {
    Vec::V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = Vec::load(mask[v], b + p * ldb + j0 + kW * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const Vec::V s = Vec::set1(TA ? a[p * lda + i0 + r] : a[(i0 + r) * lda + p]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = Vec::fmadd(s, bv[v], acc[r][v]);
    }
  }
  store_block<MR, NV>(acc, mask, alpha, beta, c + i0 * ldc, ldc, j0, ep);
}

// A's rows for gather_block: row r's k values in `runs` runs of `len` floats, run s at
// rows[r] + s * stride. A matrix's rows: one run of k; an unpadded convolution's window
// read where it lies in the image (im2col's row without the copy): kh runs of kw * c
// floats, an image row apart.
struct ARuns {
  int64_t len = 0, runs = 1, stride = 0;
};

// small_block (not transposed, alpha 1, beta 0) on rows given by pointers: the same
// multiply-adds in the same order, so the same bits as on those rows copied into a matrix.
// With pool > 1, the maxima of each pool consecutive rows (MR a multiple of pool) go to c's
// rows instead (store_pooled).
template <int MR, int NV>
void gather_block(const float* const* rows, ARuns ar, int64_t n, const float* b, int64_t ldb,
                  float* c, int64_t ldc, int64_t j0, Epilogue ep, int64_t pool) {
  Vec::M mask[NV];
  Vec::V acc[MR][NV];
  start_block<MR, NV>(n, j0, mask, acc);
  const float* row[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) row[r] = rows[r];
  const float* bp = b + j0;
  for (int64_t s = 0; s < ar.runs; ++s) {
    for (int64_t q = 0; q < ar.len; ++q, bp += ldb) {
      Vec::V bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = Vec::load(mask[v], bp + kW * v);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const Vec::V x = Vec::set1(row[r][q]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = Vec::fmadd(x, bv[v], acc[r][v]);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) row[r] += ar.stride;
  }
  if (pool == 1)
    store_block<MR, NV>(acc, mask, 1.f, 0.f, c, ldc, j0, ep);
  else
    store_pooled<MR, NV>(acc, mask, pool, c, ldc, j0, ep);
}

// gather_block on `rest` <= R rows, in one block of that height.
template <int R, int NV>
void gather_last_rows(int64_t rest, const float* const* rows, ARuns ar, int64_t n,
                      const float* b, int64_t ldb, float* c, int64_t ldc, int64_t j0,
                      Epilogue ep, int64_t pool) {
  if constexpr (R > 0) {
    if (rest == R)
      gather_block<R, NV>(rows, ar, n, b, ldb, c, ldc, j0, ep, pool);
    else
      gather_last_rows<R - 1, NV>(rest, rows, ar, n, b, ldb, c, ldc, j0, ep, pool);
  }
}

// Whether gather_gemm can take the maxima over windows of `pool` rows in registers for n
// columns: its widest blocks hold at least one window.
bool pools_in_registers(int64_t pool, int64_t n) {
  const int64_t widest = std::min<int64_t>(Vec::kMaxCols, (n + kW - 1) / kW);
  return pool <= Vec::pooled_rows(static_cast<int>(widest));
}

// C (m x n) = A B + bias (relu) for A's m rows given by pointers, in blocks as small_gemm_nn's
// panel. With pool > 1 (pools_in_registers), C's row i / pool is instead the maximum of
// rows i..i+pool-1 (windows of max pooling; m a multiple of pool), in blocks of whole windows.
void gather_gemm(const float* const* rows, ARuns ar, int64_t m, int64_t n, const float* b,
                 float* c, Epilogue ep, int64_t pool = 1) {
  auto cols = [&](auto nv) {
    constexpr int NV = decltype(nv)::value, MR = Vec::rows(NV), MP = Vec::pooled_rows(NV);
    return [&](int64_t j0) {
      if (pool > 1) {
        const int64_t h = MP / pool * pool;
        for (int64_t i = 0; i < m; i += h)
          gather_last_rows<MP, NV>(std::min(h, m - i), rows + i, ar, n, b, n, c + i / pool * n, n,
                                   j0, ep, pool);
        return;
      }
      int64_t i = 0;
      for (; i + MR <= m; i += MR)
        gather_block<MR, NV>(rows + i, ar, n, b, n, c + i * n, n, j0, ep, 1);
      gather_last_rows<MR - 1, NV>(m - i, rows + i, ar, n, b, n, c + i * n, n, j0, ep, 1);
    };
  };
  for (int64_t j0 = 0; j0 < n; j0 += kW * Vec::kMaxCols) {
    switch (std::min<int64_t>(Vec::kMaxCols, (n - j0 + kW - 1) / kW)) {
      case 1: cols(std::integral_constant<int, 1>())(j0); break;
      case 2: cols(std::integral_constant<int, 2>())(j0); break;
      case 3: cols(std::integral_constant<int, 3>())(j0); break;
      default: cols(std::integral_constant<int, Vec::kMaxCols>())(j0); break;
    }
  }
}

// The last `rest` < R rows in one block of that height.
template <bool TA, int R, int NV>
void last_rows(int64_t rest, int64_t i0, int64_t n, int64_t k, float alpha, const float* a,
               int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
               int64_t j0, Epilogue ep) {
  if constexpr (R > 0) {
    if (rest == R)
      small_block<TA, R, NV>(i0, n, k, alpha, a, lda, b, ldb, beta, c, ldc, j0, ep);
    else
      last_rows<TA, R - 1, NV>(rest, i0, n, k, alpha, a, lda, b, ldb, beta, c, ldc, j0, ep);
  }
}

template <bool TA, int NV>
void small_cols(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int64_t j0,
                Epilogue ep) {
  constexpr int MR = Vec::rows(NV);
  int64_t i = 0;
  for (; i + MR <= m; i += MR)
    small_block<TA, MR, NV>(i, n, k, alpha, a, lda, b, ldb, beta, c, ldc, j0, ep);
  last_rows<TA, MR - 1, NV>(m - i, i, n, k, alpha, a, lda, b, ldb, beta, c, ldc, j0, ep);
}

// One row of C (alpha a B + beta C, + bias, relu) in blocks of NV whole vectors, as
// small_block<false, 1, NV> computes them (the same bits) without its masks.
template <int NV>
void row_block(int64_t k, float alpha, const float* a, const float* b, int64_t ldb, float beta,
               float* c, int64_t j0, Epilogue ep) {
  Vec::V acc[NV];
#pragma GCC unroll 32
  for (int v = 0; v < NV; ++v) acc[v] = Vec::zero();
  const float* bp = b + j0;
  for (int64_t p = 0; p < k; ++p, bp += ldb) {
    const Vec::V s = Vec::set1(a[p]);
#pragma GCC unroll 32
    for (int v = 0; v < NV; ++v) acc[v] = Vec::fmadd(s, Vec::load(bp + kW * v), acc[v]);
  }
  const Vec::M all = Vec::mask(kW);
#pragma GCC unroll 32
  for (int v = 0; v < NV; ++v) {
    float* cv = c + j0 + kW * v;
    Vec::store(all, cv, finish(acc[v], alpha, beta, all, cv, ep, j0 + kW * v));
  }
}

// A single row (predicting one sample): blocks as wide as the registers hold, so that each
// step of k reads B's row (nearly) whole and B streams from L3 as one run, not as runs of
// kMaxCols vectors a row apart (the MNIST MLP's 784 x 512 weights on one core of an AMD
// EPYC: 18.4 -> 16.4 us, its 512 x 256 6.2 -> 5.3 us; blocks of half rows were slower than
// narrow ones). Widths of kRowCols, 16, 12 and 8 vectors, the widest that fits first;
// returns the first column left to the narrow blocks.
int64_t row_blocks(int64_t n, int64_t k, float alpha, const float* a, const float* b,
                   int64_t ldb, float beta, float* c, Epilogue ep) {
  int64_t j0 = 0;
  auto step = [&](auto nv) {
    constexpr int NV = decltype(nv)::value;
    if (NV > Vec::kRowCols || (n - j0) / kW < NV) return false;
    row_block<NV>(k, alpha, a, b, ldb, beta, c, j0, ep);
    j0 += kW * NV;
    return true;
  };
  using std::integral_constant;
  while (step(integral_constant<int, Vec::kRowCols>()) || step(integral_constant<int, 16>()) ||
         step(integral_constant<int, 12>()) || step(integral_constant<int, 8>())) {
  }
  return j0;
}

// Panels of kPanel rows run over all column blocks
// while their rows of A stay in L1; op(B) is read from L2 once per panel.
template <bool TA>
void small_gemm_nn(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                   const float* b, int64_t ldb, float beta, float* c, int64_t ldc, Epilogue ep) {
  for (int64_t i0 = 0; i0 < m; i0 += kPanel) {
    const int64_t mi = std::min(kPanel, m - i0);
    const float* ai = TA ? a + i0 : a + i0 * lda;
    float* ci = c + i0 * ldc;
    // (not on a thread's share of the columns, half of each row: narrow blocks were faster)
    const bool whole_rows = !TA && mi == 1 && 4 * n >= 3 * ldb;
    const int64_t first = whole_rows ? row_blocks(n, k, alpha, ai, b, ldb, beta, ci, ep) : 0;
    for (int64_t j0 = first; j0 < n; j0 += kW * Vec::kMaxCols) {
      switch (std::min<int64_t>(Vec::kMaxCols, (n - j0 + kW - 1) / kW)) {
        case 1: small_cols<TA, 1>(mi, n, k, alpha, ai, lda, b, ldb, beta, ci, ldc, j0, ep); break;
        case 2: small_cols<TA, 2>(mi, n, k, alpha, ai, lda, b, ldb, beta, ci, ldc, j0, ep); break;
        case 3: small_cols<TA, 3>(mi, n, k, alpha, ai, lda, b, ldb, beta, ci, ldc, j0, ep); break;
        default:
          small_cols<TA, Vec::kMaxCols>(mi, n, k, alpha, ai, lda, b, ldb, beta, ci, ldc, j0, ep);
          break;
      }
    }
  }
}
#else
template <bool TA>
void small_gemm_nn(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                   const float* b, int64_t ldb, float beta, float* c, int64_t ldc, Epilogue ep) {
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) ci[j] = beta == 0.f ? 0.f : beta * ci[j];
    for (int64_t p = 0; p < k; ++p) {
      const float s = alpha * (TA ? a[p * lda + i] : a[i * lda + p]);
      const float* bp = b + p * ldb;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) ci[j] += s * bp[j];
    }
    for (int64_t j = 0; j < n; ++j) {
      const float v = ep.bias ? ci[j] + ep.bias[j] : ci[j];
      ci[j] = !ep.relu || v > 0.f ? v : 0.f;
    }
  }
}
#endif

#if defined(__AVX2__)
// out[0..7][0..7] (rows ldo apart) = the transpose of a[0..7][0..7] (rows lda apart), in
// registers.
inline void transpose8(const float* a, int64_t lda, float* out, int64_t ldo) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(a + i * lda);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int h = 0; h < 8; h += 4) {  // (each half: rows 0-3, 4-7)
    r[h] = _mm256_shuffle_ps(t[h], t[h + 2], 0x44);
    r[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], 0xEE);
    r[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0x44);
    r[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(out + i * ldo, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(out + (i + 4) * ldo, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}
#endif

// out (cols x rows, rows apart) = a^T for a (rows x cols, lda apart), in 16 x 16 tiles: each
// tile's lines stay in L1 while it is read by rows and written by columns; whole tiles in
// 8 x 8 blocks in registers (AVX2 and AVX-512 sets: 784 x 512 through the test harness,
// its copies included, 206 -> 119 us on one core).
void transpose_into(const float* a, int64_t rows, int64_t cols, int64_t lda, float* out) {
  constexpr int64_t kTile = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile)
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
#if defined(__AVX2__)
      if (r1 - r0 == kTile && c1 - c0 == kTile) {
        for (int64_t r = r0; r < r1; r += 8)
          for (int64_t c = c0; c < c1; c += 8)
            transpose8(a + r * lda + c, lda, out + c * rows + r, rows);
        continue;
      }
#endif
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) out[c * rows + r] = a[r * lda + c];
    }
}

// Multiply-adds per part of our kernel's work that the threads share; panels of rows
// from which the threads share panels (fewer: blocks of columns, as even as the rows are
// few: 32 rows are panels of 24 and 8).
constexpr int64_t kMinMacs = int64_t(1) << 20;
constexpr int64_t kMinPanels = 4;
constexpr int64_t kL2B = 256 * 1024;  // floats of B that stay in one core's L2 (1 MB)

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
// y (windows x n) = the maxima over each window's p consecutive rows of A B (A's rows of
// windows [w0, w1) written by rows_of(w0, w1, rows), runs ar) + bias (relu), each row's
// values as small_gemm computes them, taken in row order as maxpool_forward takes them.
// Panels of whole windows (about kPanel rows) go through the kernel, which takes the maxima
// in registers (blocks of whole windows: the LeNet CNN's first convolution 11.9 -> 10.1 ms
// per 1,024 images on one core) or, for windows taller than its blocks, stores the rows in a
// per-thread scratch that stays in L1; the threads share panels.
template <class RowsOf>
void pooled_gemm(int64_t windows, int64_t p, ARuns ar, int64_t n, RowsOf&& rows_of,
                 const float* b, Epilogue ep, float* y) {
  const int64_t per_panel = std::max<int64_t>(1, kPanel / p), k = ar.len * ar.runs;
  const int64_t panels = (windows + per_panel - 1) / per_panel;
  const int64_t grain = std::max<int64_t>(1, kMinMacs / (per_panel * p * n * k));
  // (windows of one position: the plain convolution, stored in place)
  const bool in_registers = p == 1 || pools_in_registers(p, n);
  parallel_for(panels, grain, [&](int64_t q0, int64_t q1) {
    thread_local std::vector<float> scratch;
    thread_local std::vector<const float*> rows;
    if (!in_registers && static_cast<int64_t>(scratch.size()) < per_panel * p * n)
      scratch.resize(per_panel * p * n);
    if (static_cast<int64_t>(rows.size()) < per_panel * p) rows.resize(per_panel * p);
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t w0 = q * per_panel, w1 = std::min(windows, w0 + per_panel);
      rows_of(w0, w1, rows.data());
      if (in_registers) {
        gather_gemm(rows.data(), ar, (w1 - w0) * p, n, b, y + w0 * n, ep, p);
        continue;
      }
      gather_gemm(rows.data(), ar, (w1 - w0) * p, n, b, scratch.data(), ep);
      for (int64_t w = w0; w < w1; ++w) {
        const float* __restrict s = scratch.data() + (w - w0) * p * n;
        float* __restrict yo = y + w * n;
        // (the first two rows in one pass: a copy loop alone would be a call to memmove)
        const float* __restrict s1 = s + n;
#pragma omp simd
        for (int64_t c = 0; c < n; ++c) yo[c] = window::beats(s1[c], s[c]) ? s1[c] : s[c];
        for (int64_t r = 2; r < p; ++r) {
          const float* __restrict sr = s + r * n;
#pragma omp simd
          for (int64_t c = 0; c < n; ++c) yo[c] = window::beats(sr[c], yo[c]) ? sr[c] : yo[c];
        }
      }
    }
  });
}
#endif

// Our kernel: op(B) transposed into a per-thread scratch when needed (no allocation
// once the first step has run), then panels of rows (or, for a single panel, blocks
// of 16 columns) shared among the threads. Each element is computed the same way
// whatever the split.
void small_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                Epilogue ep = {}) {
  if (tb) {
    thread_local std::vector<float> bt;
    if (static_cast<int64_t>(bt.size()) < k * n) bt.resize(k * n);
    transpose_into(b, n, k, ldb, bt.data());
    b = bt.data();
    ldb = n;
  }
  auto run = [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    const float* ai = ta ? a + i0 : a + i0 * lda;
    const Epilogue e{ep.bias ? ep.bias + j0 : nullptr, ep.relu};
    if (ta)
      small_gemm_nn<true>(i1 - i0, j1 - j0, k, alpha, ai, lda, b + j0, ldb, beta,
                          c + i0 * ldc + j0, ldc, e);
    else
      small_gemm_nn<false>(i1 - i0, j1 - j0, k, alpha, ai, lda, b + j0, ldb, beta,
                           c + i0 * ldc + j0, ldc, e);
  };
  const int64_t panels = (m + kPanel - 1) / kPanel, blocks = (n + 15) / 16;
  const bool wide_b = k * n > kL2B && n >= 128;
  if (panels >= kMinPanels && !wide_b) {
    const int64_t grain = std::max<int64_t>(1, kMinMacs / (kPanel * n * k));
    parallel_for(panels, grain, [&](int64_t p0, int64_t p1) {
      run(p0 * kPanel, std::min(p1 * kPanel, m), 0, n);
    });
  } else {
    // Few rows (panels too few to share evenly), or B past L2 (each thread streaming all
    // of it would share the cores' L3 bandwidth: the MNIST MLP's step on 2 threads 1.88-1.95
    // -> 1.78-1.80 ms): the threads share B's columns, each streaming its part once per panel,
    // from its own cache, in parts of kMinMacs or of grain_for's memory
    const int64_t grain =
        std::min(grain_for(16 * k), std::max<int64_t>(1, kMinMacs / (16 * k * m)));
    const bool pinned = true;
    parallel_for(
        blocks, grain, [&](int64_t b0, int64_t b1) { run(0, m, b0 * 16, std::min(b1 * 16, n)); },
        pinned);
  }
}

}  // namespace
}  // namespace deepcore
