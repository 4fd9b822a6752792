/* What the CPU (and the OS, which must save the wide registers) supports, read with CPUID
   and XGETBV by the compiler's __builtin_cpu_supports, with no kernels loaded: the Python
   package asks this library which kernel set to load (deepcore/_kernel_sets.py). */
#include <string.h>

#define DEEPCORE_EXPORT __attribute__((visibility("default")))

/* 1 where the CPU runs `feature`, 0 where it does not, -1 for a name this library does not
   know. Features: the x86-64 levels ("x86-64-v2": SSE4.2 and POPCNT; "x86-64-v3": AVX2,
   FMA, BMI1/2, F16C, MOVBE; "x86-64-v4": AVX-512 F, BW, CD, DQ, VL) and single extensions. */
DEEPCORE_EXPORT int deepcore_cpu_has(const char* feature) {
  static const char* const known[] = {"x86-64-v2", "x86-64-v3", "x86-64-v4", "sse4.2", "avx",
                                      "avx2", "fma", "avx512f", "avx512bw", "avx512dq",
                                      "avx512vl", "avx512vnni", "avx512bf16"};
  int found = 0;
  for (unsigned i = 0; i < sizeof(known) / sizeof(known[0]); ++i) found |= !strcmp(feature, known[i]);
  if (!found) return -1;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  /* (__builtin_cpu_supports takes string literals only) */
  if (!strcmp(feature, "x86-64-v2")) return __builtin_cpu_supports("x86-64-v2") != 0;
  if (!strcmp(feature, "x86-64-v3")) return __builtin_cpu_supports("x86-64-v3") != 0;
  if (!strcmp(feature, "x86-64-v4")) return __builtin_cpu_supports("x86-64-v4") != 0;
  if (!strcmp(feature, "sse4.2")) return __builtin_cpu_supports("sse4.2") != 0;
  if (!strcmp(feature, "avx")) return __builtin_cpu_supports("avx") != 0;
  if (!strcmp(feature, "avx2")) return __builtin_cpu_supports("avx2") != 0;
  if (!strcmp(feature, "fma")) return __builtin_cpu_supports("fma") != 0;
  if (!strcmp(feature, "avx512f")) return __builtin_cpu_supports("avx512f") != 0;
  if (!strcmp(feature, "avx512bw")) return __builtin_cpu_supports("avx512bw") != 0;
  if (!strcmp(feature, "avx512dq")) return __builtin_cpu_supports("avx512dq") != 0;
  if (!strcmp(feature, "avx512vl")) return __builtin_cpu_supports("avx512vl") != 0;
  if (!strcmp(feature, "avx512vnni")) return __builtin_cpu_supports("avx512vnni") != 0;
  if (!strcmp(feature, "avx512bf16")) return __builtin_cpu_supports("avx512bf16") != 0;
#endif
  return 0;
}
