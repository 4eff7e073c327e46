#include "common/flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, some_flag, "", "A flag named with an underscore");
ABSL_FLAG(bool, other_flag, false, "Another one, given with one dash");

namespace smig {
namespace {

using ::testing::ElementsAre;

// absl allows one usage message per process, so ParseFlags runs once, on every case.
TEST(ParseFlagsTest, AcceptsDashesInNamesAndLeavesValuesAndPositionalsAlone) {
  std::vector<std::string> storage = {"prog", "--some-flag=x-y", "-other-flag", "pos-arg",
                                      "--", "--not-a-flag"};
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);

  std::vector<char*> rest = ParseFlags(static_cast<int>(storage.size()), argv.data(), "test");

  EXPECT_EQ(absl::GetFlag(FLAGS_some_flag), "x-y");
  EXPECT_TRUE(absl::GetFlag(FLAGS_other_flag));
  std::vector<std::string> positional(rest.begin(), rest.end());
  EXPECT_THAT(positional, ElementsAre("prog", "pos-arg", "--not-a-flag"));
}

}  // namespace
}  // namespace smig
