// A minimal test harness for the C++ tests: each test binary registers TEST cases and
// runs them all from main(); CHECK failures are reported with file and line and make the
// binary exit non-zero, which is what ctest reads.
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace cadence_test {

struct TestCase {
  const char* name;
  std::function<void()> body;
};

inline std::vector<TestCase>& registry() {
  static std::vector<TestCase> tests;
  return tests;
}
inline int& num_failures() {
  static int failures = 0;
  return failures;
}

struct Registrar {
  Registrar(const char* name, std::function<void()> body) {
    registry().push_back({name, std::move(body)});
  }
};

inline int run_all() {
  int num_failed_tests = 0;
  for (const auto& test : registry()) {
    const int before = num_failures();
    test.body();
    const bool ok = num_failures() == before;
    std::printf("[%s] %s\n", ok ? "PASS" : "FAIL", test.name);
    if (!ok) ++num_failed_tests;
  }
  std::printf("%d tests, %d failed\n", static_cast<int>(registry().size()), num_failed_tests);
  return num_failed_tests == 0 ? 0 : 1;
}

}  // namespace cadence_test

#define CADENCE_TEST_CONCAT2(a, b) a##b
#define CADENCE_TEST_CONCAT(a, b) CADENCE_TEST_CONCAT2(a, b)
#define TEST(name)                                                                     \
  static void name();                                                                  \
  static ::cadence_test::Registrar CADENCE_TEST_CONCAT(registrar_, name)(#name, name); \
  static void name()

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::printf("  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++::cadence_test::num_failures();                                      \
    }                                                                        \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
  do {                                                                                             \
    const double va_ = (a), vb_ = (b);                                                             \
    if (!(std::fabs(va_ - vb_) <= (tol))) {                                                        \
      std::printf("  %s:%d: CHECK_NEAR failed: %s=%g %s=%g tol=%g\n", __FILE__, __LINE__, #a, va_, \
                  #b, vb_, static_cast<double>(tol));                                              \
      ++::cadence_test::num_failures();                                                            \
    }                                                                                              \
  } while (0)

#define CHECK_THROWS(expr)                                                                \
  do {                                                                                    \
    bool threw_ = false;                                                                  \
    try {                                                                                 \
      (void)(expr);                                                                       \
    } catch (...) {                                                                       \
      threw_ = true;                                                                      \
    }                                                                                     \
    if (!threw_) {                                                                        \
      std::printf("  %s:%d: expected an exception from %s\n", __FILE__, __LINE__, #expr); \
      ++::cadence_test::num_failures();                                                   \
    }                                                                                     \
  } while (0)

#define TEST_MAIN() \
  int main() { return ::cadence_test::run_all(); }
