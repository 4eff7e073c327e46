# The fake transport (tests/fakes/fake_endpoint.h), shared by the unit tests and the fuzz
# targets (tests/fuzz), each of which may be built without the other.
include_guard(GLOBAL)
smig_library(smig_fakes
  SRCS ${CMAKE_CURRENT_LIST_DIR}/fake_endpoint.cc
  DEPS smig_transport absl::strings absl::synchronization absl::time)
