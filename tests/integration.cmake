# Integration suites that cross real networks (namespaces, veth) on both SCTP stacks.
smig_library(smig_testbed SRCS ${CMAKE_CURRENT_SOURCE_DIR}/integration/testbed.cc DEPS smig_proto absl::status absl::statusor
  absl::strings absl::time)

smig_binary(transport_integration_test SRCS ${CMAKE_CURRENT_SOURCE_DIR}/integration/transport_test.cc
  DEPS smig_testbed smig_transport GTest::gtest_main GTest::gmock)
target_compile_definitions(transport_integration_test PRIVATE
  SMIG_SCTPCAT="$<TARGET_FILE:smig-sctpcat>")

# The userland stack: one ctest test per case (a case skipped for want of root shows as
# skipped). Kernel-only cases are not run here at all.
gtest_discover_tests(transport_integration_test TEST_PREFIX "userland." TEST_FILTER "-*Kernel*"
  DISCOVERY_MODE PRE_TEST
  PROPERTIES LABELS "integration;userland" ENVIRONMENT "SMIG_TEST_STACK=userland" TIMEOUT 120)

# The kernel stack: natively where the kernel has SCTP, else in the kvm-sctp VM.
# Exit 77 (reported as skipped, never passed) only when neither is possible and
# SMIG_REQUIRE_KERNEL is unset; CI sets it, so there it fails instead.
add_test(NAME transport_integration_kernel
  COMMAND ${PROJECT_SOURCE_DIR}/scripts/run-kernel-test $<TARGET_FILE:smig-sctpcat>
          $<TARGET_FILE:transport_integration_test>)
# One VM boot for the whole suite; any case gtest skipped makes the entry "skipped", never
# "passed".
set_tests_properties(transport_integration_kernel PROPERTIES
  LABELS "kernel" ENVIRONMENT "SMIG_TEST_STACK=kernel" SKIP_RETURN_CODE 77 TIMEOUT 1500
  SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")

smig_binary(dataplane_integration_test SRCS ${CMAKE_CURRENT_SOURCE_DIR}/integration/dataplane_test.cc
  DEPS smig_testbed smig_proto GTest::gtest_main GTest::gmock)
target_compile_definitions(dataplane_integration_test PRIVATE
  SMIG_DATAPLANE="$<TARGET_FILE:smig-dataplane>")
gtest_discover_tests(dataplane_integration_test TEST_PREFIX "userland." DISCOVERY_MODE PRE_TEST
  PROPERTIES LABELS "integration;userland" ENVIRONMENT "SMIG_TEST_STACK=userland" TIMEOUT 120)
add_test(NAME dataplane_integration_kernel
  COMMAND ${PROJECT_SOURCE_DIR}/scripts/run-kernel-test $<TARGET_FILE:smig-sctpcat>
          $<TARGET_FILE:dataplane_integration_test>)
set_tests_properties(dataplane_integration_kernel PROPERTIES
  LABELS "kernel" ENVIRONMENT "SMIG_TEST_STACK=kernel" SKIP_RETURN_CODE 77 TIMEOUT 1500
  SKIP_REGULAR_EXPRESSION "\\\\[  SKIPPED \\\\]")
