// Every server's JSON config (common/config.h: ParseJsonConfig, what LoadServerConfig and
// LoadJsonConfig run on the file): the data plane daemon's DataplaneConfig and the PMM's,
// MDM's and SMM's configs. The input is parsed as each of them in turn, so one corpus of
// the repository's real config files serves all four. Checks that a config either parses
// or gets INVALID_ARGUMENT, and that a parsed one survives a round trip through JSON.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/json_util.h"
#include "smig/dataplane/v1/config.pb.h"
#include "smig/decision/v1/decision.pb.h"
#include "smig/migrator/v1/migrator.pb.h"
#include "smig/proximity/v1/proximity.pb.h"
#include "tests/fuzz/fuzz_check.h"

namespace {
std::string Bytes(const google::protobuf::Message& m) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&coded);
  }
  return out;
}

template <typename Config>
void Parse(absl::string_view json) {
  Config config;
  absl::Status s = smig::ParseJsonConfig(json, "fuzz.json", config);
  smig::fuzz::Check(s.ok() || absl::IsInvalidArgument(s), "a bad config is INVALID_ARGUMENT");
  if (!s.ok()) return;
  std::string again;
  smig::fuzz::Check(google::protobuf::util::MessageToJsonString(config, &again).ok(),
                    "a parsed config prints as JSON");
  Config reparsed;
  smig::fuzz::Check(smig::ParseJsonConfig(again, "again.json", reparsed).ok(),
                    "a printed config parses again");
  smig::fuzz::Check(Bytes(config) == Bytes(reparsed), "a config survives a round trip through JSON");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view json(reinterpret_cast<const char*>(data), size);
  Parse<smig::dataplane::v1::DataplaneConfig>(json);
  Parse<smig::proximity::v1::ProximityConfig>(json);
  Parse<smig::decision::v1::DecisionConfig>(json);
  Parse<smig::migrator::v1::MigratorConfig>(json);
  return 0;
}
