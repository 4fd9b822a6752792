// The backend test harness as one translation unit: its files share pybind11's templates,
// and compiled together they take a quarter of the time they take one by one (so their
// anonymous namespaces must not clash: shared helpers live in harness.h).
#include "harness.cpp"
#include "harness_conv.cpp"
#include "harness_conv1d.cpp"
#include "harness_embedding.cpp"
#include "harness_losses.cpp"
#include "harness_masking.cpp"
#include "harness_recurrent.cpp"
#include "harness_update.cpp"
