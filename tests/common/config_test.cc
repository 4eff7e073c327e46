#include "common/config.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "smig/transport/v1/transport.pb.h"

namespace smig {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, ParsesKnownKeysAndDurations) {
  transport::v1::FailoverProfile p;
  ASSERT_TRUE(ParseJsonConfig(R"({"rto_min":"0.05s","path_max_retrans":2,"pfThreshold":0})",
                              "inline", p)
                  .ok());
  EXPECT_EQ(p.rto_min().nanos(), 50000000);
  EXPECT_EQ(p.path_max_retrans(), 2u);
  EXPECT_TRUE(p.has_pf_threshold());
}

TEST(ConfigTest, UnknownKeyIsAnErrorThatNamesIt) {
  transport::v1::FailoverProfile p;
  absl::Status s = ParseJsonConfig(R"({"path_max_retrans":2,"heartbeat_intervall":"1s"})",
                                   "profile.json", p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("heartbeat_intervall"));
  EXPECT_THAT(s.message(), HasSubstr("profile.json"));
}

TEST(ConfigTest, WrongTypeAndMissingFileAreClearErrors) {
  transport::v1::FailoverProfile p;
  EXPECT_EQ(ParseJsonConfig(R"({"path_max_retrans":"two"})", "x", p).code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<transport::v1::FailoverProfile> missing =
      LoadJsonConfig<transport::v1::FailoverProfile>("/nonexistent/smig.json");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent/smig.json"));
}

TEST(ConfigTest, LoadsAFile) {
  std::string path = ::testing::TempDir() + "/profile.json";
  std::ofstream(path) << R"({"assoc_max_retrans": 4})";
  absl::StatusOr<transport::v1::FailoverProfile> p =
      LoadJsonConfig<transport::v1::FailoverProfile>(path);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->assoc_max_retrans(), 4u);
}

}  // namespace
}  // namespace smig
