#include "core/roi.h"

namespace sluice::core {
namespace {

__extension__ using Int128 = __int128;

int64_t divRound(Int128 num, Int128 den) {
  if (den == 0) return 0;
  if (den < 0) {
    num = -num;
    den = -den;
  }
  const Int128 q = num >= 0 ? (num + den / 2) / den : -((-num + den / 2) / den);
  if (q > INT64_MAX) return INT64_MAX;
  if (q < INT64_MIN) return INT64_MIN;
  return static_cast<int64_t>(q);
}

}  // namespace

int64_t percentHundredths(MicroUsd part, MicroUsd whole) {
  if (whole == 0) return 0;
  return divRound(static_cast<Int128>(part) * 10'000, whole);
}

MicroUsd perMonth(MicroUsd amount, int64_t period_ms) {
  if (period_ms <= 0) return 0;
  return divRound(static_cast<Int128>(amount) * kRoiMonthMs, period_ms);
}

}  // namespace sluice::core
