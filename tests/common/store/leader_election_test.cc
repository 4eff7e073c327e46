// LeaderElection against a real etcd (tests/fakes/etcd_process.h, with a 1 s lease TTL;
// each test starts its own): one leader at a time, handover on Resign, takeover after the
// leader dies (in process, and a process killed with SIGKILL), a leader that cannot renew
// steps down before anyone else leads, the belief ending by the injected clock, and an etcd
// that is killed and restarted. Takeover times are printed.
#include "common/store/leader_election.h"

#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/store/etcd_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/etcd_process.h"
#include "tests/integration/testbed.h"

namespace smig::store {
namespace {

using ::smig::store::testing::EtcdProcess;
using ::testing::HasSubstr;

constexpr char kName[] = "/smig/leader/test";

// What a replica's listener saw, with real-time stamps.
class Events {
 public:
  struct Event {
    bool gained;
    absl::Time at;
    Leadership term;
    absl::Status why;
  };
  Election::Listener listener() {
    return {.on_gained = [this](const Leadership& l) { Add({true, absl::Now(), l, {}}); },
            .on_lost = [this](const Leadership& l, const absl::Status& why) {
              Add({false, absl::Now(), l, why});
            }};
  }
  // The first event of the kind (`gained`) at or after index `from`, waiting up to `timeout`.
  std::optional<Event> Await(bool gained, size_t from, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    std::optional<Event> found;
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (size_t i = from; i < events_.size(); ++i) {
        if (events_[i].gained == gained) {
          found = events_[i];
          return true;
        }
      }
      return false;
    };
    mu_.AwaitWithTimeout(absl::Condition(&seen), timeout);
    return found;
  }
  size_t size() {
    absl::MutexLock lock(&mu_);
    return events_.size();
  }

 private:
  void Add(Event e) {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(e));
  }
  absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
};

class LeaderElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
    absl::StatusOr<std::unique_ptr<EtcdStore>> raw =
        EtcdStore::Create({.endpoints = {etcd_->endpoint()}, .prefix = ""});
    ASSERT_TRUE(raw.ok());
    raw_ = std::move(*raw);
  }

  std::unique_ptr<LeaderElection> New(const std::string& id, Events* events = nullptr,
                                      Clock& clock = Clock::Real()) {
    absl::StatusOr<std::unique_ptr<LeaderElection>> e = LeaderElection::Create(
        {.endpoints = {etcd_->endpoint()}, .name = kName, .id = id}, clock);
    EXPECT_TRUE(e.ok()) << e.status();
    if (!e.ok()) return nullptr;
    if (events != nullptr) (*e)->SetListener(events->listener());
    return std::move(*e);
  }

  // Waits until `n` candidates have keys in the election (so a standby is queued).
  bool AwaitCandidates(size_t n, absl::Duration timeout = absl::Seconds(5)) {
    for (absl::Time end = absl::Now() + timeout; absl::Now() < end;) {
      absl::StatusOr<std::vector<Entry>> keys = raw_->List(std::string(kName) + "/");
      if (keys.ok() && keys->size() == n) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  std::unique_ptr<EtcdProcess> etcd_;
  std::unique_ptr<EtcdStore> raw_;  // etcd's keys as they are (no prefix)
};

// Samples IsLeader() of every replica every millisecond on a thread of its own, and
// counts the samples in which more than one believed it led.
class OverlapWatch {
 public:
  explicit OverlapWatch(std::vector<LeaderElection*> replicas)
      : thread_([this, replicas] {
          while (!stop_) {
            int leaders = 0;
            for (LeaderElection* r : replicas) leaders += r->IsLeader() ? 1 : 0;
            if (leaders > 1) ++overlaps_;
            absl::SleepFor(absl::Milliseconds(1));
          }
        }) {}
  ~OverlapWatch() { Stop(); }
  int Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return overlaps_;
  }

 private:
  std::atomic<bool> stop_ = false;
  std::atomic<int> overlaps_ = 0;
  std::thread thread_;
};

TEST_F(LeaderElectionTest, ExactlyOneOfThreeLeads) {
  std::vector<std::unique_ptr<LeaderElection>> replicas;
  for (const char* id : {"a", "b", "c"}) replicas.push_back(New(id));
  for (auto& r : replicas) r->Start();
  std::optional<size_t> leader;
  for (absl::Time end = absl::Now() + absl::Seconds(5); !leader && absl::Now() < end;) {
    for (size_t i = 0; i < replicas.size(); ++i) {
      if (replicas[i]->IsLeader()) leader = i;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_TRUE(leader.has_value()) << "no replica leads after 5 s";
  ASSERT_TRUE(AwaitCandidates(3));
  // For a second (three lease renewals): always exactly one, always the same.
  for (absl::Time end = absl::Now() + absl::Seconds(1); absl::Now() < end;) {
    for (size_t i = 0; i < replicas.size(); ++i) {
      ASSERT_EQ(replicas[i]->IsLeader(), i == *leader) << "replica " << i;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  std::optional<Leadership> term = replicas[*leader]->current();
  ASSERT_TRUE(term.has_value());
  EXPECT_TRUE(absl::StartsWith(term->key, std::string(kName) + "/"));
  EXPECT_NE(term->lease, 0);
  absl::StatusOr<std::optional<LeaderInfo>> who = replicas[(*leader + 1) % 3]->Leader();
  ASSERT_TRUE(who.ok()) << who.status();
  ASSERT_TRUE(who->has_value());
  EXPECT_EQ((*who)->id, std::string(1, static_cast<char>('a' + *leader)));
  EXPECT_EQ((*who)->revision, term->revision);
}

TEST_F(LeaderElectionTest, LeaderIsNobodyWithoutCandidates) {
  std::unique_ptr<LeaderElection> a = New("a");
  absl::StatusOr<std::optional<LeaderInfo>> who = a->Leader();
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(*who, std::nullopt);
  EXPECT_FALSE(a->IsLeader());
  EXPECT_TRUE(a->Resign().ok());  // not leading: nothing to do
}

TEST_F(LeaderElectionTest, ResignHandsOverWithinHalfASecond) {
  Events ea, eb;
  std::unique_ptr<LeaderElection> a = New("a", &ea);
  a->Start();
  absl::StatusOr<Leadership> term_a = a->AwaitLeadership(absl::Seconds(5));
  ASSERT_TRUE(term_a.ok()) << term_a.status();
  std::unique_ptr<LeaderElection> b = New("b", &eb);
  b->Start();
  ASSERT_TRUE(AwaitCandidates(2));
  OverlapWatch overlap({a.get(), b.get()});

  absl::Time start = absl::Now();
  ASSERT_TRUE(a->Resign().ok());
  EXPECT_FALSE(a->IsLeader());  // at once
  std::optional<Events::Event> gained = eb.Await(true, 0, absl::Seconds(2));
  ASSERT_TRUE(gained.has_value()) << "b does not lead 2 s after a resigned";
  absl::Duration handover = gained->at - start;
  std::printf("[ measured ] handover after Resign: %s\n", absl::FormatDuration(handover).c_str());
  EXPECT_LE(handover, absl::Milliseconds(500));
  EXPECT_GT(gained->term.revision, term_a->revision);

  std::optional<Events::Event> lost = ea.Await(false, 0, absl::Seconds(2));
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->why.code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(lost->why.message(), HasSubstr("resigned"));
  // a stays a candidate, behind b.
  ASSERT_TRUE(AwaitCandidates(2));
  EXPECT_TRUE(b->IsLeader());
  EXPECT_FALSE(a->IsLeader());
  EXPECT_EQ(a->Leader()->value().id, "b");
  EXPECT_EQ(overlap.Stop(), 0);
}

TEST_F(LeaderElectionTest, DeadLeaderIsReplacedWithinTwoSeconds) {
  Events eb;
  std::unique_ptr<LeaderElection> a = New("a");
  a->Start();
  ASSERT_TRUE(a->AwaitLeadership(absl::Seconds(5)).ok());
  std::unique_ptr<LeaderElection> b = New("b", &eb);
  b->Start();
  ASSERT_TRUE(AwaitCandidates(2));

  absl::Time death = absl::Now();
  a->AbandonForTesting();  // no resign, no revoke: its lease has to expire at etcd
  std::optional<Events::Event> gained = eb.Await(true, 0, absl::Seconds(4));
  ASSERT_TRUE(gained.has_value()) << "b does not lead 4 s after a died";
  absl::Duration takeover = gained->at - death;
  std::printf("[ measured ] takeover after the leader died (in process): %s\n",
              absl::FormatDuration(takeover).c_str());
  EXPECT_LE(takeover, absl::Seconds(2));
}

TEST_F(LeaderElectionTest, LeaderKilledWithSigkillIsReplacedWithinTwoSeconds) {
  std::string out = absl::StrCat(::testing::TempDir(), "election_child_", getpid(), ".out");
  absl::StatusOr<std::unique_ptr<testbed::Process>> child =
      testbed::Process::Start({SMIG_ELECTION_CHILD, etcd_->endpoint(), kName, "child"}, out);
  ASSERT_TRUE(child.ok()) << child.status();
  bool leading = false;
  for (absl::Time end = absl::Now() + absl::Seconds(10); !leading && absl::Now() < end;) {
    std::ifstream in(out);
    std::string word;
    leading = (in >> word) && word == "leading";
    if (!leading) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(leading) << "the child does not lead; its stderr: " << (*child)->Stderr();
  Events eb;
  std::unique_ptr<LeaderElection> b = New("b", &eb);
  b->Start();
  ASSERT_TRUE(AwaitCandidates(2));
  EXPECT_FALSE(b->IsLeader());

  absl::Time death = absl::Now();
  (*child)->Kill(SIGKILL);
  std::optional<Events::Event> gained = eb.Await(true, 0, absl::Seconds(4));
  ASSERT_TRUE(gained.has_value()) << "b does not lead 4 s after kill -9 of the leader";
  absl::Duration takeover = gained->at - death;
  std::printf("[ measured ] takeover after kill -9 of the leader process: %s\n",
              absl::FormatDuration(takeover).c_str());
  EXPECT_LE(takeover, absl::Seconds(2));
  (void)(*child)->Wait(absl::Seconds(5));
  std::remove(out.c_str());
  std::remove((out + ".err").c_str());
}

TEST_F(LeaderElectionTest, LeaderThatCannotRenewStepsDownBeforeAnotherLeads) {
  Events ea, eb;
  std::unique_ptr<LeaderElection> a = New("a", &ea);
  a->Start();
  ASSERT_TRUE(a->AwaitLeadership(absl::Seconds(5)).ok());
  std::unique_ptr<LeaderElection> b = New("b", &eb);
  b->Start();
  ASSERT_TRUE(AwaitCandidates(2));
  OverlapWatch overlap({a.get(), b.get()});

  absl::Time cut = absl::Now();
  a->SilenceForTesting(true);  // etcd no longer hears from a (no renewal, no revoke)
  std::optional<Events::Event> lost = ea.Await(false, 0, absl::Seconds(3));
  std::optional<Events::Event> gained = eb.Await(true, 0, absl::Seconds(4));
  ASSERT_TRUE(lost.has_value()) << "a still believes it leads 3 s after its renewals stopped";
  ASSERT_TRUE(gained.has_value()) << "b does not lead 4 s after a's renewals stopped";
  EXPECT_EQ(lost->why.code(), absl::StatusCode::kUnavailable) << lost->why;
  EXPECT_THAT(lost->why.message(), HasSubstr("not renewed in time"));
  std::printf("[ measured ] renewals stopped -> a steps down %s, b leads %s (margin %s)\n",
              absl::FormatDuration(lost->at - cut).c_str(),
              absl::FormatDuration(gained->at - cut).c_str(),
              absl::FormatDuration(gained->at - lost->at).c_str());
  EXPECT_LT(lost->at, gained->at);
  EXPECT_LE(lost->at - cut, absl::Seconds(1));  // TTL less the margin, since the last renewal
  EXPECT_FALSE(a->IsLeader());
  EXPECT_EQ(overlap.Stop(), 0);
}

TEST_F(LeaderElectionTest, BeliefEndsByTheInjectedClock) {
  SimulatedClock clock;
  Events ea;
  std::unique_ptr<LeaderElection> a = New("a", &ea, clock);
  a->Start();
  // The simulated clock stands still, so wait in real time.
  ASSERT_TRUE(ea.Await(true, 0, absl::Seconds(5)).has_value());
  ASSERT_TRUE(a->IsLeader());
  a->SilenceForTesting(true);
  // Granted at the clock's start: the belief lasts TTL (1 s) less the margin (250 ms).
  clock.Advance(absl::Milliseconds(740));
  EXPECT_TRUE(a->IsLeader());
  clock.Advance(absl::Milliseconds(20));
  EXPECT_FALSE(a->IsLeader());  // no thread had to run for that
  std::optional<Events::Event> lost = ea.Await(false, 0, absl::Seconds(2));
  ASSERT_TRUE(lost.has_value());
  EXPECT_THAT(lost->why.message(), HasSubstr("not renewed in time"));
  a->Stop();
}

TEST_F(LeaderElectionTest, LeadershipIsLostAndRegainedAcrossAnEtcdRestart) {
  Events ea;
  std::unique_ptr<LeaderElection> a = New("a", &ea);
  a->Start();
  absl::StatusOr<Leadership> before = a->AwaitLeadership(absl::Seconds(5));
  ASSERT_TRUE(before.ok()) << before.status();

  ASSERT_TRUE(etcd_->Kill().ok());
  std::optional<Events::Event> lost = ea.Await(false, 0, absl::Seconds(3));
  ASSERT_TRUE(lost.has_value()) << "a still leads 3 s after etcd died";
  EXPECT_FALSE(a->IsLeader());
  absl::StatusOr<std::optional<LeaderInfo>> who = a->Leader();
  EXPECT_EQ(who.status().code(), absl::StatusCode::kUnavailable) << who.status();
  EXPECT_THAT(who.status().message(), HasSubstr(etcd_->endpoint()));

  ASSERT_TRUE(etcd_->Restart().ok());
  absl::Time restarted = absl::Now();
  absl::StatusOr<Leadership> after = a->AwaitLeadership(absl::Seconds(10));
  ASSERT_TRUE(after.ok()) << after.status();
  std::printf("[ measured ] leading again %s after etcd answered again\n",
              absl::FormatDuration(absl::Now() - restarted).c_str());
  EXPECT_GT(after->revision, before->revision);  // a new term
  std::optional<Events::Event> regained = ea.Await(true, 2, absl::Seconds(1));
  ASSERT_TRUE(regained.has_value());
  EXPECT_EQ(regained->term, *after);
  EXPECT_EQ(a->Leader()->value().id, "a");
}

TEST(LeaderElectionOptionsTest, RejectsWhatEtcdCannotDo) {
  auto create = [](LeaderElection::Options o) { return LeaderElection::Create(o).status().code(); };
  LeaderElection::Options ok{.endpoints = {"127.0.0.1:1"}, .id = "a"};
  EXPECT_EQ(create(ok), absl::StatusCode::kOk);
  LeaderElection::Options o = ok;
  o.ttl = absl::Milliseconds(1500);
  EXPECT_EQ(create(o), absl::StatusCode::kInvalidArgument);
  o = ok;
  o.ttl = absl::Milliseconds(500);
  EXPECT_EQ(create(o), absl::StatusCode::kInvalidArgument);
  o = ok;
  o.safety_margin = absl::Milliseconds(700);
  EXPECT_EQ(create(o), absl::StatusCode::kInvalidArgument);
  o = ok;
  o.id = "";
  EXPECT_EQ(create(o), absl::StatusCode::kInvalidArgument);
  o = ok;
  o.endpoints.clear();
  EXPECT_EQ(create(o), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace smig::store
