#include "dataplane/transport/message_assembler.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace smig::transport {
namespace {

using Key = MessageAssembler::Key;
using ::testing::HasSubstr;
using ::testing::Optional;

// Unwraps a result that must be ok.
std::optional<std::string> Ok(absl::StatusOr<std::optional<std::string>> r) {
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : std::nullopt;
}

TEST(MessageAssemblerTest, SinglePieceComesBackWhole) {
  MessageAssembler a(100);
  EXPECT_THAT(Ok(a.Add(Key{1, 0}, "hello", true)), Optional(std::string("hello")));
  EXPECT_EQ(a.pending(), 0u);
}

TEST(MessageAssemblerTest, JoinsPiecesUntilEndOfRecord) {
  MessageAssembler a(100);
  Key k{7, 3};
  EXPECT_EQ(Ok(a.Add(k, "ab", false)), std::nullopt);
  EXPECT_EQ(a.pending(), 1u);
  EXPECT_EQ(Ok(a.Add(k, "cd", false)), std::nullopt);
  EXPECT_THAT(Ok(a.Add(k, "e", true)), Optional(std::string("abcde")));
  EXPECT_EQ(a.pending(), 0u);
  // The next message starts empty.
  EXPECT_THAT(Ok(a.Add(k, "z", true)), Optional(std::string("z")));
}

TEST(MessageAssemblerTest, MessageExactlyAtTheLimitPasses) {
  MessageAssembler a(6);
  EXPECT_EQ(Ok(a.Add(Key{1, 1}, "abc", false)), std::nullopt);
  EXPECT_THAT(Ok(a.Add(Key{1, 1}, "def", true)), Optional(std::string("abcdef")));
  EXPECT_THAT(Ok(a.Add(Key{1, 2}, "123456", true)), Optional(std::string("123456")));
}

TEST(MessageAssemblerTest, KeepsStreamsAssociationsAndNotificationsApart) {
  MessageAssembler a(100);
  Key s1{1, 1}, s2{1, 2}, other_assoc{2, 1}, notification{1, 1, true};
  EXPECT_EQ(Ok(a.Add(s1, "a1", false)), std::nullopt);
  EXPECT_EQ(Ok(a.Add(s2, "b1", false)), std::nullopt);
  EXPECT_EQ(Ok(a.Add(other_assoc, "c1", false)), std::nullopt);
  EXPECT_EQ(Ok(a.Add(notification, "n1", false)), std::nullopt);
  EXPECT_EQ(a.pending(), 4u);
  EXPECT_THAT(Ok(a.Add(s2, "b2", true)), Optional(std::string("b1b2")));
  EXPECT_THAT(Ok(a.Add(notification, "n2", true)), Optional(std::string("n1n2")));
  EXPECT_THAT(Ok(a.Add(s1, "a2", true)), Optional(std::string("a1a2")));
  EXPECT_THAT(Ok(a.Add(other_assoc, "c2", true)), Optional(std::string("c1c2")));
  EXPECT_EQ(a.pending(), 0u);
}

TEST(MessageAssemblerTest, OverLimitFailsOnceThenSwallowsTheRestOfThatMessage) {
  MessageAssembler a(10);
  Key k{3, 4};
  EXPECT_EQ(Ok(a.Add(k, "123456", false)), std::nullopt);
  absl::StatusOr<std::optional<std::string>> over = a.Add(k, "789012", false);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(over.status().message(), HasSubstr("association 3 stream 4"));
  // The rest of the dropped message: neither errors nor data.
  EXPECT_EQ(Ok(a.Add(k, "more", false)), std::nullopt);
  EXPECT_EQ(Ok(a.Add(k, "end", true)), std::nullopt);
  EXPECT_EQ(a.pending(), 0u);
  // The next message is fine.
  EXPECT_THAT(Ok(a.Add(k, "next", true)), Optional(std::string("next")));
}

TEST(MessageAssemblerTest, OverLimitOnTheLastPieceFailsAndLeavesNothing) {
  MessageAssembler a(4);
  Key k{1, 0};
  EXPECT_EQ(Ok(a.Add(k, "abc", false)), std::nullopt);
  EXPECT_EQ(a.Add(k, "de", true).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(a.pending(), 0u);
  // A single piece over the limit fails too.
  EXPECT_EQ(a.Add(k, "abcde", true).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(a.pending(), 0u);
  EXPECT_THAT(Ok(a.Add(k, "ok", true)), Optional(std::string("ok")));
}

TEST(MessageAssemblerTest, OverLimitOnOneStreamLeavesOthersAlone) {
  MessageAssembler a(4);
  EXPECT_EQ(Ok(a.Add(Key{1, 1}, "ab", false)), std::nullopt);
  EXPECT_FALSE(a.Add(Key{1, 2}, "abcdef", false).ok());
  EXPECT_THAT(Ok(a.Add(Key{1, 1}, "cd", true)), Optional(std::string("abcd")));
}

TEST(MessageAssemblerTest, ForgetDropsOnlyThatAssociation) {
  MessageAssembler a(100);
  EXPECT_EQ(Ok(a.Add(Key{1, 1}, "old", false)), std::nullopt);
  EXPECT_EQ(Ok(a.Add(Key{1, 2, true}, "old", false)), std::nullopt);
  EXPECT_EQ(Ok(a.Add(Key{2, 1}, "kept-", false)), std::nullopt);
  a.Forget(1);
  EXPECT_EQ(a.pending(), 1u);
  EXPECT_THAT(Ok(a.Add(Key{1, 1}, "new", true)), Optional(std::string("new")));
  EXPECT_THAT(Ok(a.Add(Key{2, 1}, "x", true)), Optional(std::string("kept-x")));
}

}  // namespace
}  // namespace smig::transport
