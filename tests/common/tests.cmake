# common/: one unit test binary per helper.
set(_common ${CMAKE_CURRENT_LIST_DIR})
smig_unit_test(flags_test SRCS ${_common}/flags_test.cc DEPS smig_common_flags absl::flags)
smig_unit_test(config_test SRCS ${_common}/config_test.cc DEPS smig_config smig_proto)
smig_unit_test(grpc_status_test SRCS ${_common}/grpc_status_test.cc DEPS smig_grpc_status)
smig_unit_test(replica_client_test
  SRCS ${_common}/replica_client_test.cc DEPS smig_replica_client smig_proto gRPC::grpc++)
smig_unit_test(grpc_address_test SRCS ${_common}/grpc_address_test.cc DEPS smig_grpc_address)
smig_unit_test(grpc_server_test
  SRCS ${_common}/grpc_server_test.cc DEPS smig_grpc_server smig_grpc_client smig_testbed)
smig_unit_test(clock_test SRCS ${_common}/clock_test.cc DEPS smig_clock)
smig_unit_test(blocking_queue_test SRCS ${_common}/blocking_queue_test.cc DEPS smig_blocking_queue)
smig_unit_test(status_macros_test
  SRCS ${_common}/status_macros_test.cc DEPS smig_status_macros absl::strings)
smig_unit_test(proto_time_test SRCS ${_common}/proto_time_test.cc DEPS smig_proto_time)
smig_unit_test(netns_test SRCS ${_common}/netns_test.cc DEPS smig_netns smig_unique_fd)
smig_unit_test(logging_test SRCS ${_common}/logging_test.cc DEPS smig_logging)
smig_unit_test(server_main_test
  SRCS ${_common}/server_main_test.cc DEPS smig_server_main smig_proto gRPC::grpc++)

# common/store: the fakes, and the etcd implementations against a real etcd (each test
# starts its own, with a 1 s lease TTL; every test takes under 5 s, so they are unit tests).
smig_unit_test(memory_store_test SRCS ${_common}/store/memory_store_test.cc DEPS smig_store_fakes)
smig_unit_test(etcd_store_test
  SRCS ${_common}/store/etcd_store_test.cc
  DEPS smig_etcd_store smig_leader_election smig_etcd_process)
smig_unit_test(store_config_test
  SRCS ${_common}/store/store_config_test.cc DEPS smig_store_config smig_store_fakes)
smig_binary(election_child SRCS ${_common}/store/election_child.cc DEPS smig_leader_election)
smig_unit_test(leader_election_test
  SRCS ${_common}/store/leader_election_test.cc
  DEPS smig_leader_election smig_etcd_store smig_etcd_process smig_testbed)
target_compile_definitions(leader_election_test
  PRIVATE SMIG_ELECTION_CHILD="$<TARGET_FILE:election_child>")
add_dependencies(leader_election_test election_child)

# Every binary: --help exits 0 and lists its flags, --version, unknown flags are errors.
foreach(bin smig-dataplane smig-proximity smig-decision smig-migrator smigctl smig-linkemu
            smig-sctpcat smig-bench-throughput smig-bench-failover smig-bench-sessions
            smig-bench-migrations)
  if(bin MATCHES "^smig-bench" AND NOT SMIG_BUILD_BENCH)
    continue()
  endif()
  add_test(NAME cli.${bin} COMMAND ${_common}/check_cli.sh $<TARGET_FILE:${bin}>)
  set_tests_properties(cli.${bin} PROPERTIES LABELS unit TIMEOUT 30)
endforeach()
