#include "tools/linkemu/link_model.h"

#include "gtest/gtest.h"

namespace smig::linkemu {
namespace {

constexpr int64_t kMs = 1000000;

TEST(ParseTest, Units) {
  EXPECT_EQ(*ParseRate("5mbit"), 5000000u);
  EXPECT_EQ(*ParseRate("500kbit"), 500000u);
  EXPECT_EQ(*ParseRate("1Gbit"), 1000000000u);
  EXPECT_EQ(*ParseRate("100kbps"), 800000u);  // bytes, as in tc
  EXPECT_EQ(*ParseRate("9600"), 9600u);
  EXPECT_EQ(*ParseRate("off"), 0u);
  EXPECT_FALSE(ParseRate("fast").ok());
  EXPECT_FALSE(ParseRate("-1mbit").ok());
  EXPECT_EQ(*ParseDelay("20ms"), absl::Milliseconds(20));
  EXPECT_EQ(*ParseDelay("0"), absl::ZeroDuration());
  EXPECT_FALSE(ParseDelay("20").ok());
  EXPECT_FALSE(ParseDelay("-1ms").ok());
  EXPECT_DOUBLE_EQ(*ParseLossPercent("0.5%"), 0.005);
  EXPECT_DOUBLE_EQ(*ParseLossPercent("100"), 1.0);
  EXPECT_FALSE(ParseLossPercent("101%").ok());
}

TEST(ParseTest, LinkCommands) {
  auto cmds = ParseCommandLine(
      "link cell dev veth0 delay 20ms jitter 2ms loss 1% rate 5mbit limit 50 down; "
      "link dsrc dir in delay 1ms up ; stats ; stats cell; ping");
  ASSERT_TRUE(cmds.ok()) << cmds.status();
  ASSERT_EQ(cmds->size(), 5u);
  const LinkCommand& a = (*cmds)[0].link;
  EXPECT_EQ(a.name, "cell");
  EXPECT_EQ(*a.dev, "veth0");
  EXPECT_EQ(*a.delay, absl::Milliseconds(20));
  EXPECT_EQ(*a.jitter, absl::Milliseconds(2));
  EXPECT_DOUBLE_EQ(*a.loss, 0.01);
  EXPECT_EQ(*a.rate_bps, 5000000u);
  EXPECT_EQ(*a.limit, 50u);
  EXPECT_FALSE(*a.up);
  EXPECT_TRUE(a.apply_in && a.apply_out);
  const LinkCommand& b = (*cmds)[1].link;
  EXPECT_FALSE(b.dev.has_value());
  EXPECT_FALSE(b.apply_out);
  EXPECT_TRUE(b.apply_in);
  EXPECT_TRUE(*b.up);
  EXPECT_FALSE(b.rate_bps.has_value());
  EXPECT_EQ((*cmds)[2].kind, Command::Kind::kStats);
  EXPECT_EQ((*cmds)[3].target, "cell");
  EXPECT_EQ((*cmds)[4].kind, Command::Kind::kPing);
  EXPECT_TRUE(ParseCommandLine("  ")->empty());
  for (const char* bad : {"link", "link c/x dev a", "link c delay", "link c foo 1", "link c dir up",
                          "link c dev abcdefghijklmnop", "stats a b", "quit now", "hello"}) {
    EXPECT_FALSE(ParseCommandLine(bad).ok()) << bad;
  }
}

TEST(PipeTest, DelayKeepsFifoAndReleasesOnTime) {
  Pipe p;
  p.params.delay = absl::Milliseconds(20);
  EXPECT_EQ(p.Admit(0, 1, 100, true, 0.5, 0), Pipe::Outcome::kQueued);
  EXPECT_EQ(p.Admit(5 * kMs, 2, 100, true, 0.5, 0), Pipe::Outcome::kQueued);
  EXPECT_EQ(*p.NextRelease(), 20 * kMs);
  EXPECT_FALSE(p.PopDue(20 * kMs - 1).has_value());
  EXPECT_EQ(p.PopDue(20 * kMs)->id, 1u);
  EXPECT_FALSE(p.PopDue(24 * kMs).has_value());
  // Lowering the delay does not let a later packet overtake a held one.
  p.params.delay = absl::ZeroDuration();
  EXPECT_EQ(p.Admit(21 * kMs, 3, 100, true, 0.5, 0), Pipe::Outcome::kQueued);
  EXPECT_FALSE(p.PopDue(21 * kMs).has_value());
  EXPECT_EQ(p.PopDue(25 * kMs)->id, 2u);
  EXPECT_EQ(p.PopDue(25 * kMs)->id, 3u);
  EXPECT_EQ(p.stats.passed, 3u);
}

TEST(PipeTest, RateSerializesAndLimitOverflows) {
  Pipe p;
  p.params.rate_bps = 1000000;  // 1250 bytes = 10 ms
  p.params.delay = absl::Milliseconds(5);
  p.params.limit = 3;
  for (uint32_t id = 1; id <= 5; ++id) {
    Pipe::Outcome o = p.Admit(0, id, 1250, true, 0.5, 0);
    EXPECT_EQ(o, id <= 3 ? Pipe::Outcome::kQueued : Pipe::Outcome::kDropOverflow) << id;
  }
  EXPECT_EQ(p.PopDue(15 * kMs)->id, 1u);
  EXPECT_FALSE(p.PopDue(25 * kMs - 1).has_value());
  EXPECT_EQ(p.PopDue(25 * kMs)->id, 2u);
  EXPECT_EQ(p.PopDue(35 * kMs)->id, 3u);
  EXPECT_EQ(p.stats.dropped_overflow, 2u);
  // Once the serializer has drained, a packet goes at once (plus the delay).
  EXPECT_EQ(p.Admit(100 * kMs, 6, 1250, true, 0.5, 0), Pipe::Outcome::kQueued);
  EXPECT_EQ(*p.NextRelease(), 115 * kMs);
}

TEST(PipeTest, LossDownAndJitter) {
  Pipe p;
  p.params.loss = 0.25;
  EXPECT_EQ(p.Admit(0, 1, 10, true, 0.2, 0), Pipe::Outcome::kDropLoss);
  EXPECT_EQ(p.Admit(0, 2, 10, true, 0.3, 0), Pipe::Outcome::kQueued);
  EXPECT_EQ(p.Admit(0, 3, 10, false, 0.9, 0), Pipe::Outcome::kDropDown);
  p.params.loss = 0;
  p.params.delay = absl::Milliseconds(10);
  p.params.jitter = absl::Milliseconds(4);
  EXPECT_EQ(p.Admit(0, 4, 10, true, 0.5, 1.0), Pipe::Outcome::kQueued);   // 14 ms
  EXPECT_EQ(p.Admit(1 * kMs, 5, 10, true, 0.5, -1.0), Pipe::Outcome::kQueued);  // 7 -> 14 (FIFO)
  EXPECT_EQ(p.depth(), 3u);
  EXPECT_EQ(p.DropAll().size(), 3u);
  EXPECT_EQ(p.stats.dropped_down, 4u);
  EXPECT_EQ(p.stats.dropped_loss, 1u);
  EXPECT_EQ(p.stats.packets, 5u);
}

}  // namespace
}  // namespace smig::linkemu
