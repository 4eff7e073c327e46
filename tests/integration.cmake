# Integration suites that cross real networks (namespaces, veth), each run on both SCTP
# stacks: on usrsctp here, and on kernel SCTP natively or in the project's VM (scripts/vm).
smig_library(smig_testbed SRCS ${CMAKE_CURRENT_SOURCE_DIR}/integration/testbed.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/integration/host_stall_probe.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/integration/grpc_prober.cc
  DEPS smig_proto smig_netns gRPC::grpc++ absl::status absl::statusor absl::strings absl::synchronization
  absl::time)

# smig_network_suite(TARGET SRCS ... [USERLAND_FILTER expr] DEPS ... DEFINES ...)
#  - userland: one ctest test per gtest case (a case skipped for want of root shows as
#    skipped), labels integration and userland;
#  - kernel: the whole binary through scripts/run-kernel-test (one VM boot), label kernel.
#    Exit 77 (skipped, never passed) only when there is neither kernel SCTP nor a VM and
#    SMIG_REQUIRE_KERNEL is unset (CI sets it, so there it fails instead); a run that
#    passed with a case gtest skipped is "skipped", never "passed" (run-kernel-test).
#  KERNEL_OWN names...: each case whose name contains one gets a kernel entry (and VM
#  boot) of its own, <target>_kernel_<name>, so that one reported "skipped" hides no
#  other case's pass.
function(smig_network_suite target)
  cmake_parse_arguments(ARG "" "USERLAND_FILTER" "SRCS;KERNEL_OWN;DEPS;DEFINES" ${ARGN})
  list(TRANSFORM ARG_SRCS PREPEND ${CMAKE_CURRENT_SOURCE_DIR}/integration/)
  smig_binary(${target} SRCS ${ARG_SRCS}
    DEPS smig_testbed ${ARG_DEPS} GTest::gtest_main GTest::gmock)
  target_compile_definitions(${target} PRIVATE ${ARG_DEFINES})
  set(filter "*")
  if(ARG_USERLAND_FILTER)
    set(filter "${ARG_USERLAND_FILTER}")
  endif()
  gtest_discover_tests(${target} TEST_PREFIX "userland." TEST_FILTER "${filter}"
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "integration;userland" ENVIRONMENT "SMIG_TEST_STACK=userland" TIMEOUT 120)
  set(kernel_filter "--gtest_filter=*")
  set(entries ${target}_kernel)
  set(own_patterns "")
  foreach(name ${ARG_KERNEL_OWN})
    add_test(NAME ${target}_kernel_${name}
      COMMAND ${PROJECT_SOURCE_DIR}/scripts/run-kernel-test $<TARGET_FILE:smig-sctpcat>
              $<TARGET_FILE:${target}> --gtest_filter=*${name}*)
    list(APPEND entries ${target}_kernel_${name})
    list(APPEND own_patterns "*${name}*")
  endforeach()
  if(own_patterns)
    list(JOIN own_patterns ":" excluded)
    set(kernel_filter "--gtest_filter=-${excluded}")
  endif()
  add_test(NAME ${target}_kernel
    COMMAND ${PROJECT_SOURCE_DIR}/scripts/run-kernel-test $<TARGET_FILE:smig-sctpcat>
            $<TARGET_FILE:${target}> ${kernel_filter})
  set_tests_properties(${entries} PROPERTIES
    LABELS "kernel" ENVIRONMENT "SMIG_TEST_STACK=kernel" SKIP_RETURN_CODE 77 TIMEOUT 1500)
endfunction()

# Kernel-only cases are not run on the userland stack at all.
# The named-path case judges a gap (not judged under TCG, so skipped there when missed): a
# kernel entry of its own, so that its skip hides no other case's pass.
smig_network_suite(transport_integration SRCS transport_test.cc transport_path_test.cc USERLAND_FILTER "-*Kernel*"
  KERNEL_OWN ASendNamingTheSecondPath
  DEPS smig_transport DEFINES SMIG_SCTPCAT="$<TARGET_FILE:smig-sctpcat>")
smig_network_suite(dataplane_integration
  SRCS dataplane_fixture.cc dataplane_test.cc dataplane_live_test.cc dataplane_bad_input_test.cc
       idle_migration_test.cc redundancy_test.cc grpc_bad_input_test.cc
  KERNEL_OWN TenMigrations LiveStreamMigrates MigratesWithinTwoRttPlus20ms TheActivePathDiesAbruptly
  DEPS smig_proto smig_netns smig_proto_time DEFINES SMIG_DATAPLANE="$<TARGET_FILE:smig-dataplane>"
  SMIG_SCTPCAT="$<TARGET_FILE:smig-sctpcat>" SMIG_PROXIMITY="$<TARGET_FILE:smig-proximity>"
  SMIG_DECISION="$<TARGET_FILE:smig-decision>" SMIG_MIGRATOR="$<TARGET_FILE:smig-migrator>"
  SMIG_HELLO_FLOOD="$<TARGET_FILE:smig-hello-flood>")

# The project's VM runner itself (scripts/vm): one boot checks argv/env/cwd, the shares,
# the modules, kernel SCTP, netns+veth, netem and a multi-homed failover; three more check
# its exit statuses. Label kernel: it is what the kernel entries above stand on.
add_test(NAME vm.selftest COMMAND ${PROJECT_SOURCE_DIR}/scripts/vm/selftest ${CMAKE_BINARY_DIR})
set_tests_properties(vm.selftest PROPERTIES LABELS kernel TIMEOUT 600)

# A hostile SCTP peer for the bad-input tests: floods a vehicle with HELLOs.
smig_binary(smig-hello-flood SRCS ${CMAKE_CURRENT_SOURCE_DIR}/integration/hello_flood.cc
  DEPS smig_transport smig_protocol smig_common_flags smig_proto absl::flags absl::strings)

# The control plane over mutual TLS on loopback TCP (no namespaces, userland SCTP).
smig_binary(control_plane_tls_test SRCS ${CMAKE_CURRENT_SOURCE_DIR}/integration/control_plane_tls_test.cc
  DEPS smig_testbed smig_grpc_client smig_proto GTest::gtest_main GTest::gmock)
target_compile_definitions(control_plane_tls_test PRIVATE
  SMIG_DATAPLANE="$<TARGET_FILE:smig-dataplane>" SMIG_PROXIMITY="$<TARGET_FILE:smig-proximity>"
  SMIG_DECISION="$<TARGET_FILE:smig-decision>" SMIG_MIGRATOR="$<TARGET_FILE:smig-migrator>")
gtest_discover_tests(control_plane_tls_test DISCOVERY_MODE PRE_TEST
  PROPERTIES LABELS integration TIMEOUT 120)
