// Counter-based random numbers: the value for (seed, i) does not depend on how
// the work is split, so results are identical for any thread count or device (the
// functions are DC_HD: the CUDA kernels draw the same bits as the CPU).
#pragma once

#include <cstdint>

#include "deepcore/hd.h"

namespace deepcore {

DC_HD inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

DC_HD inline uint64_t random_bits(uint64_t seed, uint64_t i) {
  return splitmix64(splitmix64(seed) ^ (i * 0xD1B54A32D192ED03ull));
}

// Uniform in [0, 1) with 24 random bits.
DC_HD inline float uniform01(uint64_t seed, uint64_t i) {
  return static_cast<float>(random_bits(seed, i) >> 40) * (1.0f / 16777216.0f);
}

}  // namespace deepcore
