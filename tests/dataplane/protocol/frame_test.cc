#include "dataplane/protocol/frame.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace smig::dataplane {
namespace {

using ::testing::HasSubstr;

uint8_t Byte(const std::string& s, size_t i) { return static_cast<uint8_t>(s[i]); }

// Reads a big-endian unsigned integer of `n` bytes at `off`, independently of frame.cc.
uint64_t ReadBe(const std::string& s, size_t off, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | Byte(s, off + i);
  return v;
}

void WriteBe(std::string& s, size_t off, size_t n, uint64_t v) {
  for (size_t i = 0; i < n; ++i) s[off + n - 1 - i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

FrameHeader SampleHeader() {
  return FrameHeader{.kind = FrameKind::kData,
                     .flow_id = 0x0102,
                     .flags = kFlagEndOfFlow,
                     .session_id = 0x1122334455667788ull,
                     .sequence = 0x0a0b0c0d0e0f1011ull,
                     .source_offset = 0x2122232425262728ull};
}

void ExpectHeadersEqual(const FrameHeader& got, const FrameHeader& want) {
  EXPECT_EQ(got.kind, want.kind);
  EXPECT_EQ(got.flow_id, want.flow_id);
  EXPECT_EQ(got.flags, want.flags);
  EXPECT_EQ(got.session_id, want.session_id);
  EXPECT_EQ(got.sequence, want.sequence);
  EXPECT_EQ(got.source_offset, want.source_offset);
}

// Decodes `wire`, which must be rejected with `want`.
void ExpectRejected(absl::string_view wire, FrameError want, absl::string_view label) {
  absl::StatusOr<FrameView> f = DecodeFrame(wire);
  ASSERT_FALSE(f.ok()) << "a malformed frame of " << wire.size() << " bytes was accepted";
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << f.status();
  EXPECT_EQ(FrameErrorOf(f.status()), want) << f.status();
  ASSERT_TRUE(FrameErrorOf(f.status()).has_value());
  EXPECT_EQ(FrameErrorName(*FrameErrorOf(f.status())), label);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr(std::string(label)));
}

TEST(FrameTest, RoundTripsEveryHeaderFieldAndThePayload) {
  FrameHeader h = SampleHeader();
  const std::string payload("media\0bytes\xff\x00tail", 17);  // embedded zeros
  std::string wire = EncodeFrame(h, payload);
  ASSERT_EQ(wire.size(), kFrameHeaderSize + payload.size());
  absl::StatusOr<FrameView> f = DecodeFrame(wire);
  ASSERT_TRUE(f.ok()) << f.status();
  ExpectHeadersEqual(f->header, h);
  EXPECT_EQ(f->payload, payload);
  // The payload is a view into the decoded buffer, not a copy.
  EXPECT_EQ(f->payload.data(), wire.data() + kFrameHeaderSize);
}

TEST(FrameTest, RoundTripsMaximumFieldValues) {
  FrameHeader h{.kind = FrameKind::kControl,
                .flow_id = std::numeric_limits<uint16_t>::max(),
                .flags = std::numeric_limits<uint16_t>::max(),
                .session_id = std::numeric_limits<uint64_t>::max(),
                .sequence = std::numeric_limits<uint64_t>::max(),
                .source_offset = std::numeric_limits<uint64_t>::max()};
  std::string payload(70000, '\xff');  // longer than 16 bits of length
  std::string wire = EncodeFrame(h, payload);
  absl::StatusOr<FrameView> f = DecodeFrame(wire);
  ASSERT_TRUE(f.ok()) << f.status();
  ExpectHeadersEqual(f->header, h);
  EXPECT_EQ(f->payload, payload);
}

TEST(FrameTest, RoundTripsZeroFieldsAndAnEmptyPayload) {
  FrameHeader h{};  // kData, everything else zero
  std::string wire = EncodeFrame(h, "");
  ASSERT_EQ(wire.size(), kFrameHeaderSize);
  absl::StatusOr<FrameView> f = DecodeFrame(wire);
  ASSERT_TRUE(f.ok()) << f.status();
  ExpectHeadersEqual(f->header, h);
  EXPECT_TRUE(f->payload.empty());
}

TEST(FrameTest, EncodeFrameHeaderPlusPayloadEqualsEncodeFrame) {
  FrameHeader h = SampleHeader();
  for (std::string payload : {std::string(), std::string("x"), std::string(1500, 'p')}) {
    std::string header(kFrameHeaderSize, '\x5a');
    EncodeFrameHeader(h, payload.size(), header.data());
    EXPECT_EQ(header + payload, EncodeFrame(h, payload)) << payload.size();
  }
}

TEST(FrameTest, EncodeFrameHeaderWritesExactlyTheHeaderBytes) {
  // A sentinel after the header must survive: the caller reads the payload in place there.
  std::string buf(kFrameHeaderSize + 4, '\x77');
  EncodeFrameHeader(SampleHeader(), 4, buf.data());
  EXPECT_EQ(buf.substr(kFrameHeaderSize), "\x77\x77\x77\x77");
  EXPECT_TRUE(DecodeFrame(buf).ok());
}

TEST(FrameTest, HeaderLayoutIsBigEndianAtTheDocumentedOffsets) {
  FrameHeader h = SampleHeader();
  std::string wire = EncodeFrame(h, "abcde");
  ASSERT_EQ(wire.size(), 41u);
  EXPECT_EQ(wire[0], 'S');
  EXPECT_EQ(wire[1], 'M');
  EXPECT_EQ(Byte(wire, 2), 1u);  // version
  EXPECT_EQ(Byte(wire, 3), 1u);  // kind: data
  EXPECT_EQ(ReadBe(wire, 4, 2), 0x0102u);
  EXPECT_EQ(Byte(wire, 4), 0x01u);
  EXPECT_EQ(Byte(wire, 5), 0x02u);
  EXPECT_EQ(ReadBe(wire, 6, 2), kFlagEndOfFlow);
  EXPECT_EQ(Byte(wire, 7), 0x01u);
  EXPECT_EQ(ReadBe(wire, 8, 8), 0x1122334455667788ull);
  EXPECT_EQ(Byte(wire, 8), 0x11u);
  EXPECT_EQ(Byte(wire, 15), 0x88u);
  EXPECT_EQ(ReadBe(wire, 16, 8), 0x0a0b0c0d0e0f1011ull);
  EXPECT_EQ(ReadBe(wire, 24, 8), 0x2122232425262728ull);
  EXPECT_EQ(ReadBe(wire, 32, 4), 5u);
  EXPECT_EQ(wire.substr(36), "abcde");

  std::string control = EncodeFrame({.kind = FrameKind::kControl}, "");
  EXPECT_EQ(Byte(control, 3), 2u);
}

TEST(FrameTest, DecodesAHandBuiltFrame) {
  // Built byte by byte from the documented layout, not by EncodeFrame.
  std::string wire(kFrameHeaderSize, '\0');
  wire[0] = 'S';
  wire[1] = 'M';
  wire[2] = 1;
  wire[3] = 2;
  WriteBe(wire, 4, 2, 0xbeef);
  WriteBe(wire, 6, 2, 0x8001);
  WriteBe(wire, 8, 8, 0xfedcba9876543210ull);
  WriteBe(wire, 16, 8, 42);
  WriteBe(wire, 24, 8, 1ull << 40);
  WriteBe(wire, 32, 4, 3);
  wire += "xyz";
  absl::StatusOr<FrameView> f = DecodeFrame(wire);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->header.kind, FrameKind::kControl);
  EXPECT_EQ(f->header.flow_id, 0xbeef);
  EXPECT_EQ(f->header.flags, 0x8001);
  EXPECT_EQ(f->header.session_id, 0xfedcba9876543210ull);
  EXPECT_EQ(f->header.sequence, 42u);
  EXPECT_EQ(f->header.source_offset, 1ull << 40);
  EXPECT_EQ(f->payload, "xyz");
}

TEST(FrameTest, RejectsEveryLengthShorterThanTheHeader) {
  // A valid frame's prefix: only the length is wrong.
  std::string wire = EncodeFrame(SampleHeader(), "");
  for (size_t n = 0; n < kFrameHeaderSize; ++n) {
    SCOPED_TRACE(n);
    ExpectRejected(absl::string_view(wire.data(), n), FrameError::kTooShort, "too_short");
  }
}

TEST(FrameTest, RejectsBadMagic) {
  std::string good = EncodeFrame(SampleHeader(), "p");
  for (size_t i : {0, 1}) {
    std::string wire = good;
    wire[i] = static_cast<char>(wire[i] ^ 0x20);  // 's' / 'm'
    ExpectRejected(wire, FrameError::kBadMagic, "bad_magic");
  }
  std::string swapped = good;
  std::swap(swapped[0], swapped[1]);  // "MS"
  ExpectRejected(swapped, FrameError::kBadMagic, "bad_magic");
}

TEST(FrameTest, RejectsBadVersion) {
  for (int v : {0, 2, 255}) {
    SCOPED_TRACE(v);
    std::string wire = EncodeFrame(SampleHeader(), "p");
    wire[2] = static_cast<char>(v);
    ExpectRejected(wire, FrameError::kBadVersion, "bad_version");
  }
}

TEST(FrameTest, RejectsBadKind) {
  for (int k : {0, 3, 255}) {
    SCOPED_TRACE(k);
    std::string wire = EncodeFrame(SampleHeader(), "p");
    wire[3] = static_cast<char>(k);
    ExpectRejected(wire, FrameError::kBadKind, "bad_kind");
  }
}

TEST(FrameTest, RejectsAPayloadLengthThatDoesNotMatchTheHeader) {
  std::string wire = EncodeFrame(SampleHeader(), "0123456789");
  // One byte more than the header says.
  ExpectRejected(wire + "!", FrameError::kBadLength, "bad_length");
  // One byte less.
  ExpectRejected(absl::string_view(wire.data(), wire.size() - 1), FrameError::kBadLength,
                 "bad_length");
  // Header-only frame that claims a payload.
  std::string empty = EncodeFrame(SampleHeader(), "");
  WriteBe(empty, 32, 4, 1);
  ExpectRejected(empty, FrameError::kBadLength, "bad_length");
  // A length that would not fit anything (all ones).
  WriteBe(empty, 32, 4, 0xffffffffu);
  ExpectRejected(empty, FrameError::kBadLength, "bad_length");
}

TEST(FrameTest, ChecksFieldsInTheDocumentedOrder) {
  // Magic, version, kind and length all wrong: the magic is reported.
  std::string wire = EncodeFrame(SampleHeader(), "p");
  wire[0] = 'X';
  wire[2] = 9;
  wire[3] = 9;
  wire += "extra";
  ExpectRejected(wire, FrameError::kBadMagic, "bad_magic");
  wire[0] = 'S';
  ExpectRejected(wire, FrameError::kBadVersion, "bad_version");
  wire[2] = 1;
  ExpectRejected(wire, FrameError::kBadKind, "bad_kind");
  wire[3] = 1;
  ExpectRejected(wire, FrameError::kBadLength, "bad_length");
}

TEST(FrameTest, ErrorNamesAreDistinctLabels) {
  EXPECT_EQ(FrameErrorName(FrameError::kTooShort), "too_short");
  EXPECT_EQ(FrameErrorName(FrameError::kBadMagic), "bad_magic");
  EXPECT_EQ(FrameErrorName(FrameError::kBadVersion), "bad_version");
  EXPECT_EQ(FrameErrorName(FrameError::kBadKind), "bad_kind");
  EXPECT_EQ(FrameErrorName(FrameError::kBadLength), "bad_length");
}

// Independent well-formedness check from the documented layout.
bool WellFormed(const std::string& s) {
  if (s.size() < kFrameHeaderSize) return false;
  if (s[0] != 'S' || s[1] != 'M' || Byte(s, 2) != 1) return false;
  if (Byte(s, 3) != 1 && Byte(s, 3) != 2) return false;
  return ReadBe(s, 32, 4) == s.size() - kFrameHeaderSize;
}

TEST(FrameTest, RandomGarbageNeverCrashesAndIsOnlyAcceptedWhenWellFormed) {
  std::mt19937 rng(20240607);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> len(0, 80);
  std::uniform_int_distribution<int> coin(0, 3);
  int accepted = 0;
  for (int i = 0; i < 10000; ++i) {
    std::string s(static_cast<size_t>(len(rng)), '\0');
    for (char& c : s) c = static_cast<char>(byte(rng));
    // Make the early checks pass often enough that the later ones are exercised too.
    if (s.size() >= kFrameHeaderSize && coin(rng) != 0) {
      s[0] = 'S';
      s[1] = 'M';
      if (coin(rng) != 0) s[2] = 1;
      if (coin(rng) != 0) s[3] = static_cast<char>(1 + coin(rng) % 2);
      if (coin(rng) != 0) WriteBe(s, 32, 4, s.size() - kFrameHeaderSize + (coin(rng) == 0));
    }
    absl::StatusOr<FrameView> f = DecodeFrame(s);
    bool want = WellFormed(s);
    ASSERT_EQ(f.ok(), want) << "buffer " << i << " of " << s.size() << " bytes: "
                            << f.status();
    if (f.ok()) {
      ++accepted;
      EXPECT_EQ(f->header.flow_id, ReadBe(s, 4, 2));
      EXPECT_EQ(f->header.flags, ReadBe(s, 6, 2));
      EXPECT_EQ(f->header.session_id, ReadBe(s, 8, 8));
      EXPECT_EQ(f->header.sequence, ReadBe(s, 16, 8));
      EXPECT_EQ(f->header.source_offset, ReadBe(s, 24, 8));
      EXPECT_EQ(f->payload, absl::string_view(s).substr(kFrameHeaderSize));
    } else {
      EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
      // Whatever the reason, it round-trips through the status payload.
      absl::optional<FrameError> error = FrameErrorOf(f.status());
      ASSERT_TRUE(error.has_value()) << f.status();
      FrameError e = *error;
      EXPECT_THAT(std::string(f.status().message()),
                  HasSubstr(std::string(FrameErrorName(e))));
      if (s.size() < kFrameHeaderSize) {
        EXPECT_EQ(e, FrameError::kTooShort);
      }
    }
  }
  // The loop is only meaningful if it exercised both outcomes.
  EXPECT_GT(accepted, 100);
  EXPECT_LT(accepted, 9000);
}

TEST(FrameErrorOfTest, OtherStatusesCarryNoFrameError) {
  EXPECT_FALSE(FrameErrorOf(absl::OkStatus()).has_value());
  EXPECT_FALSE(FrameErrorOf(absl::InvalidArgumentError("not from DecodeFrame")).has_value());
}

}  // namespace
}  // namespace smig::dataplane
