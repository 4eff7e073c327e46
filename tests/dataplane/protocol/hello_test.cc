#include "dataplane/protocol/hello.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace smig::dataplane {
namespace {

using ::testing::HasSubstr;

const std::string kKey = "0123456789abcdef-session-key-032";  // 32 bytes

HelloAuthenticator MakeAuth(const std::string& key = kKey) {
  absl::StatusOr<HelloAuthenticator> a = HelloAuthenticator::Create(key);
  EXPECT_TRUE(a.ok()) << a.status();
  return *std::move(a);
}

void FlipByte(std::string& s, size_t i) { s[i] = static_cast<char>(s[i] ^ 0x01); }

// Big-endian, written out byte by byte so it does not share code with hello.cc.
std::string Be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i) {
    s[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return s;
}

// The MAC exactly as wire.proto documents it.
std::string Hmac(const std::string& key, const std::string& msg) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string DocumentedMac(const std::string& key, const dataplane::v1::Hello& h) {
  std::string msg = "smig-hello-v2";
  msg += Be64(h.session_id());
  msg += Be64(h.generation());
  msg += h.server_id();
  msg.push_back('\0');
  msg += h.nonce();
  return Hmac(key, msg);
}

TEST(HelloTest, CreateRejectsKeysThatAreNot32Bytes) {
  for (size_t n : {0, 1, 16, 31, 33, 64}) {
    SCOPED_TRACE(n);
    absl::StatusOr<HelloAuthenticator> a = HelloAuthenticator::Create(std::string(n, 'k'));
    ASSERT_FALSE(a.ok());
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(a.status().message()),
                HasSubstr(absl::StrCat("session key of ", n, " bytes; it needs 32")));
  }
}

TEST(HelloTest, MintedKeysAre32RandomBytes) {
  std::string a = MintSessionKey(), b = MintSessionKey();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_TRUE(HelloAuthenticator::Create(a).ok());
}

// The ratchet exactly as docs/protocol.md says: each step HMACs the next generation.
TEST(HelloTest, TheRatchetIsTheDocumentedChainAndGoesOneWay) {
  std::string k2 = Hmac(kKey, "smig-session-key-v1" + Be64(2));
  std::string k3 = Hmac(k2, "smig-session-key-v1" + Be64(3));
  EXPECT_EQ(RatchetSessionKey(kKey, 1, 2), k2);
  EXPECT_EQ(RatchetSessionKey(kKey, 1, 3), k3);
  EXPECT_EQ(RatchetSessionKey(k2, 2, 3), k3);
  EXPECT_EQ(RatchetSessionKey(kKey, 4, 4), kKey);
  // Generation 2's HELLO verifies with generation 2's key only.
  dataplane::v1::Hello h = MakeAuth(k2).Sign(1, "edge-b", 2);
  EXPECT_TRUE(MakeAuth(k2).Verify(h).ok());
  EXPECT_EQ(MakeAuth(kKey).Verify(h).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(MakeAuth(k3).Verify(h).code(), absl::StatusCode::kPermissionDenied);
}

TEST(HelloTest, TheAckIsBoundToTheHellosNonceAndTheKey) {
  HelloAuthenticator auth = MakeAuth();
  dataplane::v1::Hello h = auth.Sign(7, "edge-a", 3);
  dataplane::v1::HelloAck ack;
  auth.SignAck(h, ack);
  EXPECT_EQ(ack.session_id(), 7u);
  EXPECT_EQ(ack.mac(), Hmac(kKey, "smig-hello-ack-v1" + Be64(7) + Be64(3) + h.nonce()));
  EXPECT_TRUE(auth.VerifyAck(h, ack).ok());
  // Another HELLO (a new nonce), another key, another session, or no MAC: denied.
  EXPECT_EQ(auth.VerifyAck(auth.Sign(7, "edge-a", 3), ack).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(MakeAuth(RatchetSessionKey(kKey, 3, 4)).VerifyAck(h, ack).code(),
            absl::StatusCode::kPermissionDenied);
  dataplane::v1::HelloAck other = ack;
  other.set_session_id(8);
  EXPECT_EQ(auth.VerifyAck(h, other).code(), absl::StatusCode::kPermissionDenied);
  other = ack;
  other.clear_mac();
  EXPECT_EQ(auth.VerifyAck(h, other).code(), absl::StatusCode::kPermissionDenied);
}

TEST(HelloTest, SignFillsTheFieldsAndVerifies) {
  HelloAuthenticator auth = MakeAuth();
  dataplane::v1::Hello h = auth.Sign(0xdeadbeefcafe0001ull, "edge-a", 7);
  EXPECT_EQ(h.session_id(), 0xdeadbeefcafe0001ull);
  EXPECT_EQ(h.server_id(), "edge-a");
  EXPECT_EQ(h.generation(), 7u);
  EXPECT_EQ(h.nonce().size(), 16u);
  EXPECT_EQ(h.mac().size(), 32u);  // SHA-256
  EXPECT_TRUE(auth.Verify(h).ok()) << auth.Verify(h);
}

TEST(HelloTest, SurvivesAProtobufRoundTrip) {
  HelloAuthenticator auth = MakeAuth();
  dataplane::v1::ControlMessage m;
  *m.mutable_hello() = auth.Sign(3, "edge-b", 2);
  std::string wire = m.SerializeAsString();
  dataplane::v1::ControlMessage parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  ASSERT_TRUE(parsed.has_hello());
  EXPECT_TRUE(auth.Verify(parsed.hello()).ok());
}

TEST(HelloTest, TwoSignsUseDifferentNoncesAndMacs) {
  HelloAuthenticator auth = MakeAuth();
  dataplane::v1::Hello a = auth.Sign(1, "edge-a", 1);
  dataplane::v1::Hello b = auth.Sign(1, "edge-a", 1);
  EXPECT_NE(a.nonce(), b.nonce());
  EXPECT_NE(a.mac(), b.mac());
  EXPECT_NE(a.nonce(), std::string(16, '\0'));
  EXPECT_TRUE(auth.Verify(a).ok());
  EXPECT_TRUE(auth.Verify(b).ok());
}

TEST(HelloTest, MacIsTheDocumentedHmacSha256) {
  HelloAuthenticator auth = MakeAuth();
  for (uint64_t session : {uint64_t{0}, uint64_t{1}, uint64_t{0x0102030405060708ull},
                           ~uint64_t{0}}) {
    for (uint64_t generation : {uint64_t{0}, uint64_t{0x8000000000000001ull}}) {
      dataplane::v1::Hello h = auth.Sign(session, "edge-α/1", generation);
      EXPECT_EQ(h.mac(), DocumentedMac(kKey, h)) << session << " " << generation;
    }
  }
}

TEST(HelloTest, TamperedFieldsAreDenied) {
  HelloAuthenticator auth = MakeAuth();
  const dataplane::v1::Hello good = auth.Sign(1000, "edge-a", 3);
  ASSERT_TRUE(auth.Verify(good).ok());

  auto expect_denied = [&](const dataplane::v1::Hello& h, const char* what) {
    absl::Status s = auth.Verify(h);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << what << ": " << s;
  };
  dataplane::v1::Hello h = good;
  h.set_session_id(1001);
  expect_denied(h, "session_id");

  h = good;
  h.set_generation(4);
  expect_denied(h, "generation");

  h = good;
  h.set_server_id("edge-b");
  expect_denied(h, "server_id");

  h = good;
  h.set_server_id("edge-a ");
  expect_denied(h, "server_id with a trailing byte");

  for (size_t i = 0; i < good.nonce().size(); ++i) {
    h = good;
    FlipByte(*h.mutable_nonce(), i);
    expect_denied(h, "nonce byte");
  }
  for (size_t i = 0; i < good.mac().size(); ++i) {
    h = good;
    FlipByte(*h.mutable_mac(), i);
    expect_denied(h, "mac byte");
  }

  h = good;
  h.mutable_mac()->pop_back();
  expect_denied(h, "short mac");
  h = good;
  h.mutable_mac()->push_back('\0');
  expect_denied(h, "long mac");
  h = good;
  h.clear_mac();
  expect_denied(h, "no mac");
}

TEST(HelloTest, MalformedHellosAreInvalidArgument) {
  HelloAuthenticator auth = MakeAuth();
  const dataplane::v1::Hello good = auth.Sign(1, "edge-a", 1);

  dataplane::v1::Hello h = good;
  h.clear_server_id();
  absl::Status s = auth.Verify(h);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("server id"));

  for (size_t n : {0, 15, 17, 32}) {
    h = good;
    h.set_nonce(std::string(n, 'n'));
    s = auth.Verify(h);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << n << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(absl::StrCat(n, " bytes")));
  }
}

TEST(HelloTest, AnotherKeyIsDenied) {
  HelloAuthenticator signer = MakeAuth();
  HelloAuthenticator other = MakeAuth("0123456789abcdef-session-key-03z");
  HelloAuthenticator prefix = MakeAuth(kKey.substr(0, 16) + std::string(16, '\0'));
  dataplane::v1::Hello h = signer.Sign(9, "edge-a", 1);
  absl::Status s = other.Verify(h);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("session 9"));
  EXPECT_EQ(prefix.Verify(h).code(), absl::StatusCode::kPermissionDenied);
  // And the other way round.
  EXPECT_EQ(signer.Verify(other.Sign(9, "edge-a", 1)).code(),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace smig::dataplane
