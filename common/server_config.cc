#include "common/server_config.h"

ABSL_FLAG(std::string, config, "",
          "The server's config file, protobuf JSON (unknown keys are errors)");
ABSL_FLAG(std::string, grpc_address, "",
          "Overrides the config's grpc_address (host:port, or unix:PATH)");
ABSL_FLAG(std::string, metrics_address, "",
          "Overrides the config's metrics_address (host:port; off: no /metrics)");
