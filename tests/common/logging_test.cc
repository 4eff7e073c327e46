#include "common/logging.h"

#include "common/logging_init.h"
#include "gtest/gtest.h"

namespace smig {
namespace {

TEST(LoggingTest, VerbosityAndMinimumLevelComeFromInit) {
  InitLogging("logging_test", 0, 0);
  EXPECT_FALSE(VLOG_IS_ON(1));
  InitLogging("logging_test", 2, 1);
  EXPECT_TRUE(VLOG_IS_ON(2));
  EXPECT_FALSE(VLOG_IS_ON(3));
  testing::internal::CaptureStderr();
  LOG(INFO) << "below the minimum level";
  LOG(WARNING) << "shown";
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("below the minimum level"), std::string::npos) << err;
  EXPECT_NE(err.find("shown"), std::string::npos) << err;
  InitLogging("logging_test", 0, 0);
}

}  // namespace
}  // namespace smig
