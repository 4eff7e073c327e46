#include "dataplane/tools/sctpcat/cat_runner.h"

#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_endpoint.h"

namespace smig::sctpcat {
namespace {

namespace v1 = transport::v1;
using transport::testing::FakeEndpoint;
using transport::testing::FakeNetwork;

// Every line must parse back into a CatRecord.
std::vector<v1::CatRecord> ParseLines(const std::string& out) {
  std::vector<v1::CatRecord> records;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    v1::CatRecord r;
    auto status = google::protobuf::util::JsonStringToMessage(std::string(line), &r);
    EXPECT_TRUE(status.ok()) << status.ToString() << ": " << line;
    records.push_back(std::move(r));
  }
  return records;
}

std::vector<v1::EventType> EventsOf(const std::vector<v1::CatRecord>& records) {
  std::vector<v1::EventType> out;
  for (const v1::CatRecord& r : records) {
    if (r.has_event()) out.push_back(r.event().type());
  }
  return out;
}

// The summary, which must be the last record.
v1::CatSummary SummaryOf(const std::vector<v1::CatRecord>& records) {
  if (records.empty() || !records.back().has_summary()) {
    ADD_FAILURE() << "the last record is not a summary";
    return v1::CatSummary();
  }
  return records.back().summary();
}

class CatRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = net_.CreateEndpoint({.local_addresses = {"10.1.0.1", "10.2.0.1"}, .port = 5000});
    client_ = net_.CreateEndpoint({.local_addresses = {"10.1.0.2", "10.2.0.2"}, .listen = false});
  }

  // Runs a listening runner (once) on a thread and `sender` here; both must succeed.
  void Run(CatOptions sender, CatOptions receiver) {
    sender.connect = true;
    sender.peers = {"10.1.0.1", "10.2.0.1"};
    sender.peer_port = 5000;
    sender.connect_timeout = absl::Seconds(5);
    sender.shutdown_timeout = absl::Seconds(5);
    receiver.once = true;
    std::atomic<bool> stop{false};
    absl::Notification receiver_done;
    absl::Status receiver_status;
    std::thread listener([&] {
      CatRunner r(*server_, receiver, receiver_out_);
      receiver_status = r.Run(stop);
      receiver_done.Notify();
    });
    std::atomic<bool> never{false};
    CatRunner s(*client_, sender, sender_out_);
    absl::Status sender_status = s.Run(never);
    // A receiver that misses the end must fail the test, not hang it.
    EXPECT_TRUE(receiver_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    stop = true;
    listener.join();
    EXPECT_TRUE(sender_status.ok()) << sender_status;
    EXPECT_TRUE(receiver_status.ok()) << receiver_status;
  }

  FakeNetwork net_;
  std::unique_ptr<FakeEndpoint> server_;
  std::unique_ptr<FakeEndpoint> client_;
  std::ostringstream sender_out_;
  std::ostringstream receiver_out_;
};

TEST_F(CatRunnerTest, NumberedMessagesArriveCompleteAndEndGracefully) {
  CatOptions sender;
  sender.input = CatOptions::Input::kNumbered;
  sender.count = 200;
  sender.rate = 0;
  sender.size = 64;
  sender.streams = {0, 1, 2};
  Run(sender, CatOptions());

  std::vector<v1::CatRecord> sent = ParseLines(sender_out_.str());
  ASSERT_FALSE(sent.empty());
  EXPECT_TRUE(sent.front().has_info());
  EXPECT_THAT(sent.front().info(), ::testing::HasSubstr("stack=unspecified"));
  EXPECT_THAT(EventsOf(sent), ::testing::ElementsAre(v1::EVENT_TYPE_ASSOC_UP,
                                                     v1::EVENT_TYPE_SHUTDOWN_COMPLETE));
  v1::CatSummary s = SummaryOf(sent);
  EXPECT_EQ(s.role(), "sender");
  EXPECT_EQ(s.messages_sent(), 200u);
  EXPECT_EQ(s.bytes_sent(), 200u * 64);
  EXPECT_EQ(s.send_errors(), 0u);

  std::vector<v1::CatRecord> received = ParseLines(receiver_out_.str());
  EXPECT_THAT(EventsOf(received),
              ::testing::ElementsAre(v1::EVENT_TYPE_ASSOC_UP, v1::EVENT_TYPE_PEER_SHUTDOWN,
                                     v1::EVENT_TYPE_SHUTDOWN_COMPLETE));
  v1::CatSummary r = SummaryOf(received);
  EXPECT_EQ(r.role(), "receiver");
  EXPECT_EQ(r.messages_received(), 200u);
  EXPECT_EQ(r.bytes_received(), 200u * 64);
  EXPECT_EQ(r.unique_received(), 200u);
  EXPECT_EQ(r.duplicates(), 0u);
  EXPECT_EQ(r.missing(), 0u);
  EXPECT_EQ(r.out_of_order(), 0u);
  EXPECT_EQ(r.highest_sequence(), 199u);
}

TEST_F(CatRunnerTest, StdinLinesArriveInOrder) {
  std::istringstream input("first line\nsecond\nthird\n");
  std::ostringstream data;
  CatOptions sender;
  sender.input = CatOptions::Input::kStdin;
  sender.stdin_stream = &input;
  CatOptions receiver;
  receiver.data_out = &data;
  receiver.print_messages = true;
  Run(sender, receiver);

  EXPECT_EQ(data.str(), "first line\nsecond\nthird\n");
  std::vector<v1::CatRecord> received = ParseLines(receiver_out_.str());
  int message_records = 0;
  for (const v1::CatRecord& rec : received) {
    if (rec.has_info() && absl::StartsWith(rec.info(), "message ")) {
      ++message_records;
      EXPECT_THAT(rec.info(), ::testing::HasSubstr("stream=1"));
    }
  }
  EXPECT_EQ(message_records, 3);
  v1::CatSummary r = SummaryOf(received);
  EXPECT_EQ(r.messages_received(), 3u);
  EXPECT_EQ(r.unique_received(), 0u);  // lines are not numbered messages
  EXPECT_EQ(SummaryOf(ParseLines(sender_out_.str())).messages_sent(), 3u);
}

TEST_F(CatRunnerTest, StdinLinesAreCutIntoChunksOfSize) {
  std::istringstream input("abcdefghij\nxy\n");
  std::ostringstream data;
  CatOptions sender;
  sender.input = CatOptions::Input::kStdin;
  sender.stdin_stream = &input;
  sender.size = 4;
  CatOptions receiver;
  receiver.data_out = &data;
  Run(sender, receiver);
  EXPECT_EQ(data.str(), "abcdefghij\nxy\n");
  // abcd, efgh, "ij\n" and "xy\n"
  EXPECT_EQ(SummaryOf(ParseLines(receiver_out_.str())).messages_received(), 4u);
}

// Size 0 means no chunk limit, like the other zeroes of CatOptions (it used to spin
// forever queueing empty chunks).
TEST_F(CatRunnerTest, StdinChunkSizeZeroSendsWholeLines) {
  std::istringstream input("abcdefghij\nxy\n");
  std::ostringstream data;
  CatOptions sender;
  sender.input = CatOptions::Input::kStdin;
  sender.stdin_stream = &input;
  sender.size = 0;
  CatOptions receiver;
  receiver.data_out = &data;
  Run(sender, receiver);
  EXPECT_EQ(data.str(), "abcdefghij\nxy\n");
  EXPECT_EQ(SummaryOf(ParseLines(receiver_out_.str())).messages_received(), 2u);
}

TEST_F(CatRunnerTest, StatsRecordsCarryPerPathCounters) {
  CatOptions sender;
  sender.input = CatOptions::Input::kNumbered;
  sender.count = 50;
  sender.rate = 500;  // 100 ms of sending, so that stats come while the association is up
  sender.size = 20;
  sender.stats_interval = absl::Milliseconds(20);
  sender.primary = "10.2.0.1:5000";
  Run(sender, CatOptions());

  uint64_t on_primary = 0;
  uint64_t elsewhere = 0;
  for (const v1::CatRecord& rec : ParseLines(sender_out_.str())) {
    if (!rec.has_stats()) continue;
    for (const v1::PathInfo& p : rec.stats().paths()) {
      if (p.address() == "10.2.0.1:5000") {
        EXPECT_TRUE(p.primary());
        on_primary = std::max(on_primary, p.messages_sent());
      } else {
        elsewhere += p.messages_sent();
      }
    }
  }
  EXPECT_GT(on_primary, 0u);
  EXPECT_EQ(elsewhere, 0u);
}

TEST_F(CatRunnerTest, PathSendsEveryMessageToThatPathBesideThePrimary) {
  CatOptions sender;
  sender.input = CatOptions::Input::kNumbered;
  sender.count = 50;
  sender.rate = 500;
  sender.size = 20;
  sender.stats_interval = absl::Milliseconds(20);
  sender.path = "10.2.0.1";  // not the primary (the first address)
  Run(sender, CatOptions());

  uint64_t on_path = 0, elsewhere = 0;
  for (const v1::CatRecord& rec : ParseLines(sender_out_.str())) {
    if (!rec.has_stats()) continue;
    for (const v1::PathInfo& p : rec.stats().paths()) {
      if (p.address() == "10.2.0.1:5000") {
        EXPECT_FALSE(p.primary());
        on_path = std::max(on_path, p.messages_sent());
      } else {
        elsewhere += p.messages_sent();
      }
    }
  }
  EXPECT_GT(on_path, 0u);
  EXPECT_EQ(elsewhere, 0u);
  EXPECT_EQ(SummaryOf(ParseLines(receiver_out_.str())).unique_received(), 50u);
}

TEST_F(CatRunnerTest, EndsWhenTheAssociationCannotStart) {
  CatOptions sender;
  sender.connect = true;
  sender.peers = {"10.9.0.1"};
  sender.peer_port = 5000;
  sender.input = CatOptions::Input::kNumbered;
  sender.count = 1;
  std::atomic<bool> stop{false};
  CatRunner s(*client_, sender, sender_out_);
  absl::Time start = absl::Now();
  absl::Status status = s.Run(stop);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), ::testing::HasSubstr("could not start"));
  // The fake reports ASSOC_CANT_START at once; the runner must not wait out connect_timeout.
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  std::vector<v1::CatRecord> records = ParseLines(sender_out_.str());
  EXPECT_THAT(EventsOf(records), ::testing::ElementsAre(v1::EVENT_TYPE_ASSOC_CANT_START));
  EXPECT_EQ(SummaryOf(records).messages_sent(), 0u);
}

}  // namespace
}  // namespace smig::sctpcat
