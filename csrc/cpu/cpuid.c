/* What the CPU (and the OS, which must save the wide registers) supports, read with CPUID
   and XGETBV by the compiler's __builtin_cpu_supports, with no kernels loaded: the Python
   package asks this library which kernel set to load (deepcore/_kernel_sets.py). */
#include <string.h>

/* The features known here: the x86-64 levels ("x86-64-v2": SSE4.2 and POPCNT;
   "x86-64-v3": AVX2, FMA, BMI1/2, F16C, MOVBE; "x86-64-v4": AVX-512 F, BW, CD, DQ, VL) and
   single extensions. (__builtin_cpu_supports takes string literals only.) */
#define DEEPCORE_FEATURES(X)                                                                 \
  X("x86-64-v2") X("x86-64-v3") X("x86-64-v4") X("sse4.2") X("avx") X("avx2") X("fma")       \
  X("avx512f") X("avx512bw") X("avx512dq") X("avx512vl") X("avx512vnni") X("avx512bf16")

/* The names above, each followed by a comma. */
#define DEEPCORE_NAME(name) name ","
__attribute__((visibility("default"))) const char* deepcore_cpu_features(void) {
  return DEEPCORE_FEATURES(DEEPCORE_NAME);
}

/* 1 where the CPU runs `feature`, 0 where it does not, -1 for a name not known here. */
__attribute__((visibility("default"))) int deepcore_cpu_has(const char* feature) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
#define DEEPCORE_CHECK(name) \
  if (!strcmp(feature, name)) return __builtin_cpu_supports(name) != 0;
#else
#define DEEPCORE_CHECK(name) \
  if (!strcmp(feature, name)) return 0;
#endif
  DEEPCORE_FEATURES(DEEPCORE_CHECK)
  return -1;
}
