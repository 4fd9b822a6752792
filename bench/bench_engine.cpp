// Times the engine without Python: sgemm peak, Dense forward/backward, one
// training step (Adam, softmax cross-entropy) and single-sample predict for the
// MLP cases of the performance table, and the recurrent cases of bench_seq.py. Prints tables.
//
//   cmake -S . -B build/bench -DDEEPCORE_BENCH=ON && cmake --build build/bench
//   ./build/bench/bench_engine [threads] [seq [lstm|embed]]   (the sequence cases only)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "deepcore/backend.h"
#include "deepcore/model.h"

using namespace deepcore;
using Clock = std::chrono::steady_clock;

// Median seconds per call of fn over repeats of at least `min_seconds` each.
static double time_it(const std::function<void()>& fn, double min_seconds = 0.2) {
  fn();  // warm-up: first call allocates the workspace
  std::vector<double> runs;
  for (int r = 0; r < 5; ++r) {
    int64_t iters = 0;
    auto t0 = Clock::now();
    double el = 0;
    do {
      fn();
      ++iters;
      el = std::chrono::duration<double>(Clock::now() - t0).count();
    } while (el < min_seconds / 5);
    runs.push_back(el / iters);
  }
  std::sort(runs.begin(), runs.end());
  return runs[2];
}

static std::vector<float> random_vec(size_t n, std::mt19937& g, float scale = 1.f) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

struct Case {
  const char* name;
  std::vector<int64_t> sizes;  // input, hidden..., classes
  int64_t batch;
};

static double sgemm_peak(Backend& be, std::mt19937& g) {
  const int64_t n = 1024;
  auto a = random_vec(n * n, g), b = random_vec(n * n, g), c = random_vec(n * n, g);
  double s = time_it([&] { be.gemm(false, false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n); });
  return 2.0 * n * n * n / s / 1e9;
}

#if defined(__x86_64__)
// One core's FMA peak: 12 independent chains of vector multiply-adds (more than the FMA
// units' latency times their count), on the widest vectors the CPU runs; GFLOP/s.
#define FMA_PEAK(NAME, TARGET, V, LANES, SET1, FMA)                                      \
  __attribute__((target(TARGET))) static double NAME() {                                \
    V acc[12];                                                                         \
    for (int j = 0; j < 12; ++j) acc[j] = SET1(float(j));                              \
    const V x = SET1(0.999f), y = SET1(1e-4f);                                         \
    const int64_t n = 20000000;                                                        \
    double best = 1e9;                                                                 \
    for (int r = 0; r < 3; ++r) {                                                      \
      const auto t0 = Clock::now();                                                    \
      for (int64_t i = 0; i < n; ++i)                                                  \
        _Pragma("GCC unroll 12") for (int j = 0; j < 12; ++j) acc[j] = FMA(acc[j], x, y); \
      best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count()); \
    }                                                                                  \
    float sum = 0.f; /* (the chains' results used) */                                  \
    for (int j = 0; j < 12; ++j) sum += reinterpret_cast<const float*>(&acc[j])[0];    \
    return sum == -1.f ? 0.0 : 12.0 * 2 * LANES * n / best / 1e9;                      \
  }
FMA_PEAK(fma_peak512, "avx512f", __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps)
FMA_PEAK(fma_peak256, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps)
static double fma_peak() {
  if (__builtin_cpu_supports("avx512f")) return fma_peak512();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return fma_peak256();
  return 0.0;
}
#else
static double fma_peak() { return 0.0; }
#endif

static void mlp_tables(Backend& be, std::mt19937& g);
static void seq_table(std::mt19937& g, const std::string& only);

int main(int argc, char** argv) {
  if (argc > 1) set_num_threads(std::atoi(argv[1]));
  const bool seq_only = argc > 2 && std::string(argv[2]) == "seq";
  Backend& be = get_backend(Device::CPU);
  std::mt19937 g(0);
  if (!seq_only) mlp_tables(be, g);
  seq_table(g, argc > 3 ? argv[3] : "");
  return 0;
}

static void mlp_tables(Backend& be, std::mt19937& g) {
  const double peak = sgemm_peak(be, g);
  std::printf("threads: %d, sgemm 1024^3 peak: %.1f GFLOP/s, one core's FMA peak: %.1f GFLOP/s\n\n",
              get_num_threads(), peak, fma_peak());

  // Dense forward and backward alone (relu, batch 128, 784 -> 512).
  {
    const int64_t m = 128, k = 784, n = 512;
    auto x = random_vec(m * k, g), w = random_vec(k * n, g, 0.05f), bias = random_vec(n, g);
    std::vector<float> z(m * n), y(m * n), dy = random_vec(m * n, g), dz(m * n), dw(k * n), db(n),
        dx(m * k);
    const ActSpec relu{Act::Relu, 0.f};
    double fwd = time_it([&] {
      be.gemm(false, false, m, n, k, 1.f, x.data(), k, w.data(), n, 0.f, z.data(), n);
      be.bias_act(relu, bias.data(), z.data(), y.data(), m, n);
    });
    double bwd = time_it([&] {
      be.act_backward(relu, z.data(), y.data(), dy.data(), dz.data(), m, n);
      be.gemm(true, false, k, n, m, 1.f, x.data(), k, dz.data(), n, 0.f, dw.data(), n);
      be.col_sum(dz.data(), m, n, db.data());
      be.gemm(false, true, m, k, n, 1.f, dz.data(), n, w.data(), n, 0.f, dx.data(), k);
    });
    std::printf("dense 784->512 relu, batch 128: forward %.1f us (%.1f GFLOP/s), backward %.1f us "
                "(%.1f GFLOP/s)\n\n",
                fwd * 1e6, 2.0 * m * k * n / fwd / 1e9, bwd * 1e6, 4.0 * m * k * n / bwd / 1e9);
  }

  const std::vector<Case> cases = {
      {"tiny 4-16-16-3", {4, 16, 16, 3}, 16},
      {"mnist 784-512-256-10", {784, 512, 256, 10}, 128},
      {"wide 1024-2048-2048-10", {1024, 2048, 2048, 10}, 256},
  };
  std::printf("%-24s %6s %12s %10s %8s %14s\n", "case", "batch", "us/step", "GFLOP/s", "%peak",
              "predict1 us");
  for (const Case& c : cases) {
    Model model;
    for (size_t i = 1; i < c.sizes.size(); ++i)
      model.add_dense(c.sizes[i], {i + 1 < c.sizes.size() ? Act::Relu : Act::Softmax, 0.f}, true);
    model.build({c.sizes[0]});
    std::vector<float> init = random_vec(model.num_params(), g, 0.05f);
    std::copy(init.begin(), init.end(), model.param_data());
    OptSpec adam;
    adam.kind = Opt::Adam;
    adam.learning_rate = 1e-3f;
    model.compile({Loss::SparseCategoricalCrossentropy, false, 1.f}, adam, {});
    const int64_t steps = 16, n = c.batch * steps, in = c.sizes.front();
    auto x = random_vec(n * in, g);
    std::vector<float> y(n);
    for (int64_t i = 0; i < n; ++i) y[i] = float(i % c.sizes.back());
    const Dataset data(model.backend(), x.data(), y.data(), nullptr, n, in, 1);
    double epoch = time_it([&] { model.fit_epoch(data, c.batch, true); });
    double step = epoch / steps;
    double flops = 0;
    for (size_t i = 1; i < c.sizes.size(); ++i) flops += 6.0 * c.batch * c.sizes[i - 1] * c.sizes[i];
    std::vector<float> out(c.sizes.back());
    const Dataset one(model.backend(), x.data(), nullptr, nullptr, 1, in, 0);
    double pred = time_it([&] { model.predict(one, 1, out.data()); }, 0.05);
    std::printf("%-24s %6lld %12.2f %10.1f %7.1f%% %14.2f\n", c.name, (long long)c.batch, step * 1e6,
                flops / step / 1e9, 100.0 * flops / step / 1e9 / peak, pred * 1e6);
  }
}

// The recurrent cases of bench/bench_seq.py (Adam; the model's step alone, no Python).
static void seq_table(std::mt19937& g, const std::string& only) {
  std::printf("\n%-34s %6s %12s %10s\n", "sequence case", "batch", "us/step", "GFLOP/s");
  struct SeqCase {
    const char* name;
    int64_t batch, steps, features, vocab;  // vocab > 0: Embedding(vocab, features) first
    Loss loss;
    int64_t out;
  };
  for (const SeqCase& c : {SeqCase{"lstm(64) 50x8 -> dense(1)", 32, 50, 8, 0,
                                   Loss::MeanSquaredError, 1},
                           SeqCase{"embed(10000,64) lstm(64) 100 steps", 64, 100, 64, 10000,
                                   Loss::BinaryCrossentropy, 1}}) {
    if (!only.empty() && std::string(c.name).rfind(only, 0) != 0) continue;
    Model model;
    if (c.vocab) model.add_embedding(c.vocab, c.features);
    model.add_recurrent(Cell::LSTM, 64, Act::Tanh, Act::Sigmoid, true, false, false);
    model.add_dense(c.out, {c.vocab ? Act::Sigmoid : Act::Linear, 0.f}, true);
    if (c.vocab)
      model.build({c.steps});
    else
      model.build({c.steps, c.features});
    std::vector<float> init = random_vec(model.num_params(), g, 0.05f);
    std::copy(init.begin(), init.end(), model.param_data());
    OptSpec adam;
    adam.kind = Opt::Adam;
    adam.learning_rate = 1e-3f;
    model.compile({c.loss, false, 1.f}, adam, {});
    const int64_t batches = 16, n = c.batch * batches, in = c.vocab ? c.steps : c.steps * c.features;
    std::vector<float> x = random_vec(n * in, g);
    if (c.vocab)
      for (int64_t i = 0; i < n * in; ++i) x[i] = float(uint32_t(g()) % c.vocab);
    std::vector<float> y(n);
    for (int64_t i = 0; i < n; ++i) y[i] = float(i % 2);
    const Dataset data(model.backend(), x.data(), y.data(), nullptr, n, in, 1);
    double step = time_it([&] { model.fit_epoch(data, c.batch, true); }) / batches;
    const double gemm = 2.0 * c.batch * c.steps * 256 * (3.0 * (64 + c.features));
    std::printf("%-34s %6lld %12.2f %10.1f\n", c.name, (long long)c.batch, step * 1e6,
                gemm / step / 1e9);
  }
}
