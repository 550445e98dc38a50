// Each config enum's name table round-trips, and a bad name names the field and the
// allowed names.
#include <string>

#include "cadence/config_enums.h"
#include "test_harness.h"

using namespace cadence;

namespace {

template <typename Enum>
void check_round_trip() {
  CHECK(!EnumNames<Enum>::names().empty());
  for (const auto& entry : EnumNames<Enum>::names()) {
    CHECK(parse_enum<Enum>(entry.second) == entry.first);
    CHECK(std::string(to_string(entry.first)) == entry.second);
  }
  const std::string field = EnumNames<Enum>::kField;
  bool threw = false;
  try {
    parse_enum<Enum>("no_such_value");
  } catch (const InvalidParameter& error) {
    threw = true;
    CHECK(error.param() == field);
    CHECK(std::string(error.what()) ==
          field + " must be one of " + enum_allowed_names<Enum>() + ", got 'no_such_value'");
  }
  CHECK(threw);
}

}  // namespace

TEST(every_enum_round_trips) {
  check_round_trip<RopeScalingType>();
  check_round_trip<NormKind>();
  check_round_trip<Activation>();
  check_round_trip<PositionKind>();
  check_round_trip<WeightDtype>();
  check_round_trip<KvCacheDtype>();
}

TEST(messages_keep_their_wording) {
  try {
    parse_enum<KvCacheDtype>("fp8");
    CHECK(false);
  } catch (const InvalidParameter& error) {
    CHECK(std::string(error.what()) ==
          "kv_cache_dtype must be one of auto, float32, bfloat16, float16, got 'fp8'");
  }
}

TEST_MAIN()
