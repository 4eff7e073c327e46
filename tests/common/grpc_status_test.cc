#include "common/grpc_status.h"

#include "gtest/gtest.h"

namespace smig {
namespace {

TEST(GrpcStatusTest, EveryCodeMapsToTheSameNumberAndTheMessageIsKept) {
  // google.rpc.Code numbers both enums the same way; check every one explicitly.
  for (int c = 0; c <= 16; ++c) {
    absl::Status s(static_cast<absl::StatusCode>(c), c == 0 ? "" : "what happened");
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), c);
    if (c != 0) {
      EXPECT_EQ(g.error_message(), "what happened");
    }
  }
  EXPECT_EQ(ToGrpcStatus(absl::NotFoundError("session 7")).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ToGrpcStatus(absl::Status(static_cast<absl::StatusCode>(99), "odd")).error_code(),
            grpc::StatusCode::UNKNOWN);
}

TEST(GrpcStatusTest, ClientsGetTheSameCodeAndMessageBack) {
  for (int c = 0; c <= 16; ++c) {
    absl::Status s(static_cast<absl::StatusCode>(c), c == 0 ? "" : "what happened");
    EXPECT_EQ(FromGrpcStatus(ToGrpcStatus(s)), s) << c;
  }
  // A code no enumerator names (a peer's): 20, not 99. grpc::StatusCode is an unscoped
  // enum without a fixed type, whose values span -32..31; casting 99 to it is undefined
  // behaviour (UBSan: "load of value 99, which is not a valid value for type 'StatusCode'").
  EXPECT_EQ(FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(20), "odd")).code(),
            absl::StatusCode::kUnknown);
}

TEST(GrpcStatusTest, AContextPrefixesTheMessageAndKeepsTheCode) {
  absl::Status s = FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connect failed"),
                                  "SMM ListSessions");
  EXPECT_EQ(s, absl::UnavailableError("SMM ListSessions: connect failed"));
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::NOT_FOUND, ""), "PMM GetProximity(car-1)"),
            absl::NotFoundError("PMM GetProximity(car-1): "));
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK, "SMM Migrate").ok());
  EXPECT_EQ(FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(20), "odd"), "call").code(),
            absl::StatusCode::kUnknown);
}

}  // namespace
}  // namespace smig
