#include <glog/logging.h>

#include <mutex>

#include "common/logging_init.h"

namespace smig {

void InitLogging(const std::string& program, int verbosity, int min_level) {
  static std::once_flag once;
  static std::string name;  // glog keeps the pointer
  std::call_once(once, [&] {
    name = program;
    FLAGS_logtostderr = true;
    google::InitGoogleLogging(name.c_str());
  });
  FLAGS_v = verbosity;
  FLAGS_minloglevel = min_level;
}

}  // namespace smig
