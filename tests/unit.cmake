# Unit tests: no network, no namespaces; each runs in well under a second.
include(GoogleTest)

include(${CMAKE_CURRENT_LIST_DIR}/fakes/fakes.cmake)
# common/store's fakes: an in-memory Store and Election, and a real etcd for tests.
smig_library(smig_store_fakes
  SRCS ${CMAKE_CURRENT_LIST_DIR}/fakes/memory_store.cc
  DEPS smig_store smig_status_macros absl::strings absl::synchronization)
smig_library(smig_etcd_process
  SRCS ${CMAKE_CURRENT_LIST_DIR}/fakes/etcd_process.cc
  DEPS smig_etcd_client absl::status absl::statusor absl::strings absl::time)

# smig_unit_test(NAME SRCS ... DEPS ...): one gtest binary, its tests labelled "unit".
function(smig_unit_test name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  smig_binary(${name} SRCS ${ARG_SRCS} DEPS ${ARG_DEPS} GTest::gtest_main GTest::gmock)
  gtest_discover_tests(${name} PROPERTIES LABELS unit DISCOVERY_TIMEOUT 30)
endfunction()

set(_unit ${CMAKE_CURRENT_LIST_DIR})
smig_unit_test(address_test
  SRCS ${_unit}/dataplane/transport/address_test.cc DEPS smig_transport)
smig_unit_test(message_assembler_test
  SRCS ${_unit}/dataplane/transport/message_assembler_test.cc DEPS smig_transport)
smig_unit_test(path_table_test
  SRCS ${_unit}/dataplane/transport/path_table_test.cc DEPS smig_transport)
smig_unit_test(endpoint_factory_test
  SRCS ${_unit}/dataplane/transport/endpoint_factory_test.cc DEPS smig_transport)
smig_unit_test(fake_endpoint_test
  SRCS ${_unit}/fakes/fake_endpoint_test.cc DEPS smig_fakes)
smig_unit_test(sequence_checker_test
  SRCS ${_unit}/dataplane/tools/sctpcat/sequence_checker_test.cc DEPS smig_sctpcat_lib)
smig_unit_test(cat_runner_test
  SRCS ${_unit}/dataplane/tools/sctpcat/cat_runner_test.cc DEPS smig_sctpcat_lib smig_fakes)
smig_unit_test(frame_test
  SRCS ${_unit}/dataplane/protocol/frame_test.cc DEPS smig_protocol)
smig_unit_test(hello_test
  SRCS ${_unit}/dataplane/protocol/hello_test.cc DEPS smig_protocol OpenSSL::Crypto)
smig_unit_test(reassembler_test
  SRCS ${_unit}/dataplane/vehicle/reassembler_test.cc DEPS smig_vehicle)
smig_unit_test(vehicle_engine_test
  SRCS ${_unit}/dataplane/vehicle/vehicle_engine_test.cc DEPS smig_vehicle smig_fakes)
smig_unit_test(redundancy_test
  SRCS ${_unit}/dataplane/edge/redundancy_test.cc DEPS smig_edge)
smig_unit_test(redundant_link_test
  SRCS ${_unit}/dataplane/edge/redundant_link_test.cc
  DEPS smig_edge smig_vehicle smig_fakes smig_proto_time)
smig_unit_test(migration_test
  SRCS ${_unit}/dataplane/edge/migration_test.cc
  DEPS smig_edge smig_vehicle smig_fakes smig_proto_time)
smig_unit_test(frame_queue_test
  SRCS ${_unit}/dataplane/edge/frame_queue_test.cc
  DEPS smig_edge smig_vehicle smig_fakes smig_proto_time)
smig_unit_test(node_test
  SRCS ${_unit}/dataplane/daemon/node_test.cc
  DEPS smig_agent_service smig_grpc_server smig_fakes smig_testbed)
smig_unit_test(node_metrics_test
  SRCS ${_unit}/dataplane/daemon/node_metrics_test.cc DEPS smig_dataplane_metrics)
smig_unit_test(fencing_test
  SRCS ${_unit}/dataplane/daemon/fencing_test.cc DEPS smig_dataplane_fencing)
smig_unit_test(ts_pacing_test
  SRCS ${_unit}/dataplane/media/ts_pacing_test.cc DEPS smig_media)
smig_unit_test(file_source_test
  SRCS ${_unit}/dataplane/media/file_source_test.cc DEPS smig_media)
smig_unit_test(udp_source_test
  SRCS ${_unit}/dataplane/media/udp_source_test.cc DEPS smig_media)
smig_unit_test(tcp_source_test
  SRCS ${_unit}/dataplane/media/tcp_source_test.cc DEPS smig_media)
smig_unit_test(sink_test
  SRCS ${_unit}/dataplane/media/sink_test.cc DEPS smig_media)
smig_unit_test(source_test
  SRCS ${_unit}/dataplane/media/source_test.cc DEPS smig_media)
