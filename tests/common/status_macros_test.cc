#include "common/status_macros.h"

#include <string>

#include "absl/strings/numbers.h"
#include "gtest/gtest.h"

namespace smig {
namespace {

absl::StatusOr<int> ParseInt(const std::string& s) {
  int v = 0;
  if (!absl::SimpleAtoi(s, &v)) return absl::InvalidArgumentError("not a number: " + s);
  return v;
}

absl::Status Positive(int v) {
  return v > 0 ? absl::OkStatus() : absl::OutOfRangeError("not positive");
}

absl::StatusOr<int> Sum(const std::string& a, const std::string& b) {
  SMIG_ASSIGN_OR_RETURN(int x, ParseInt(a));
  SMIG_ASSIGN_OR_RETURN(int y, ParseInt(b));
  SMIG_RETURN_IF_ERROR(Positive(x));
  SMIG_RETURN_IF_ERROR(Positive(y));
  return x + y;
}

TEST(StatusMacrosTest, PassesValuesAndReturnsTheFirstErrorUnchanged) {
  EXPECT_EQ(Sum("2", "3").value(), 5);
  EXPECT_EQ(Sum("x", "3").status(), absl::InvalidArgumentError("not a number: x"));
  EXPECT_EQ(Sum("2", "y").status(), absl::InvalidArgumentError("not a number: y"));
  EXPECT_EQ(Sum("-1", "3").status(), absl::OutOfRangeError("not positive"));
}

TEST(StatusMacrosTest, AssignsToAnExistingVariable) {
  auto twice = [](const std::string& s) -> absl::StatusOr<int> {
    int v = 0;
    SMIG_ASSIGN_OR_RETURN(v, ParseInt(s));
    return 2 * v;
  };
  EXPECT_EQ(twice("21").value(), 42);
  EXPECT_FALSE(twice("z").ok());
}

}  // namespace
}  // namespace smig
