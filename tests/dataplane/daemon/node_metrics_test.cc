#include "dataplane/daemon/node_metrics.h"

#include <prometheus/registry.h>

#include "gtest/gtest.h"

namespace smig::dataplane {
namespace {

namespace tv1 = transport::v1;

tv1::Event PathEvent(tv1::EventType type, const std::string& address) {
  tv1::Event e;
  e.set_type(type);
  e.set_assoc_id(7);
  e.set_address(address);
  return e;
}

class FailoverCountTest : public ::testing::Test {
 protected:
  FailoverCountTest() : metrics_(registry_, "vehicle") {
    tv1::AssociationInfo info;
    info.set_assoc_id(7);
    tv1::PathInfo* up = info.add_paths();
    up->set_address("10.101.1.1:6000");  // the handshake's path
    up->set_state(tv1::PATH_STATE_ACTIVE);
    tv1::PathInfo* never = info.add_paths();
    never->set_address("10.102.1.1:6000");  // a radio that was dead from the start
    never->set_state(tv1::PATH_STATE_UNCONFIRMED);
    metrics_.OnAssociationUp(info);
  }
  void Count(tv1::EventType type, const std::string& address) {
    metrics_.CountPathEvent(PathEvent(type, address), [](transport::AssocId) { return true; });
  }
  double failovers() const { return metrics_.failovers.Value(); }

  prometheus::Registry registry_;
  NodeMetrics metrics_;
};

TEST_F(FailoverCountTest, APathThatWasNeverUpFailsNothingOver) {
  Count(tv1::EVENT_TYPE_PATH_UNREACHABLE, "10.102.1.1:6000");
  EXPECT_EQ(failovers(), 0);
}

TEST_F(FailoverCountTest, APathThatWasUpCountsOnceForPfThenUnreachable) {
  Count(tv1::EVENT_TYPE_PATH_POTENTIALLY_FAILED, "10.101.1.1:6000");
  Count(tv1::EVENT_TYPE_PATH_UNREACHABLE, "10.101.1.1:6000");
  EXPECT_EQ(failovers(), 1);
}

TEST_F(FailoverCountTest, APathConfirmedLaterCountsWhenItDies) {
  Count(tv1::EVENT_TYPE_PATH_AVAILABLE, "10.102.1.1:6000");
  Count(tv1::EVENT_TYPE_PATH_UNREACHABLE, "10.102.1.1:6000");
  Count(tv1::EVENT_TYPE_PATH_AVAILABLE, "10.102.1.1:6000");
  Count(tv1::EVENT_TYPE_PATH_UNREACHABLE, "10.102.1.1:6000");
  EXPECT_EQ(failovers(), 2);
}

TEST_F(FailoverCountTest, PathsOfAnAssociationThatCarriesNoSessionAreNotCounted) {
  metrics_.CountPathEvent(PathEvent(tv1::EVENT_TYPE_PATH_UNREACHABLE, "10.101.1.1:6000"),
                          [](transport::AssocId) { return false; });
  EXPECT_EQ(failovers(), 0);
}

}  // namespace
}  // namespace smig::dataplane
