// The flags every smig server takes, and the config they load:
//   --config=FILE           the server's config message as protobuf JSON (unknown keys are
//                           errors, see config.h); none: the message's defaults
//   --grpc-address=ADDR     overrides the config's grpc_address
//   --metrics-address=ADDR  overrides its metrics_address
//
//   absl::StatusOr<v1::MigratorConfig> config = smig::LoadServerConfig<v1::MigratorConfig>();
//
// Config messages name those fields grpc_address and metrics_address.
#pragma once

#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "common/config.h"

ABSL_DECLARE_FLAG(std::string, config);
ABSL_DECLARE_FLAG(std::string, grpc_address);
ABSL_DECLARE_FLAG(std::string, metrics_address);

namespace smig {

template <typename Config>
absl::StatusOr<Config> LoadServerConfig() {
  Config config;
  if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    if (absl::Status s = LoadJsonConfigInto(path, config); !s.ok()) return s;
  }
  if (const std::string a = absl::GetFlag(FLAGS_grpc_address); !a.empty()) {
    config.set_grpc_address(a);
  }
  if (const std::string a = absl::GetFlag(FLAGS_metrics_address); !a.empty()) {
    config.set_metrics_address(a);
  }
  return config;
}

}  // namespace smig
