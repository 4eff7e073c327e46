smig_library(smig_fake_agents SRCS ${CMAKE_CURRENT_LIST_DIR}/../../fakes/fake_agents.cc
  DEPS smig_migrator_engine smig_dataplane_fencing smig_clock smig_status_macros absl::strings
       absl::synchronization)
smig_unit_test(migrator_engine_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/migrator_engine_test.cc
  DEPS smig_migrator_engine smig_fake_agents prometheus-cpp::core)
smig_unit_test(migrator_service_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/migrator_service_test.cc
  DEPS smig_migrator_service smig_fake_agents smig_store_fakes smig_grpc_server)
smig_unit_test(agent_client_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/agent_client_test.cc
  DEPS smig_migrator_engine smig_grpc_server)
smig_unit_test(migrator_replicas_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/migrator_replicas_test.cc
  DEPS smig_migrator_engine smig_fake_agents smig_store_fakes prometheus-cpp::core)
# The replicas on a real etcd (each test starts its own, lease TTL 1 s; under 5 s).
smig_unit_test(migrator_etcd_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/migrator_etcd_test.cc
  DEPS smig_migrator_engine smig_fake_agents smig_etcd_store smig_leader_election smig_etcd_process
       prometheus-cpp::core)
smig_unit_test(reconciler_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/reconciler_test.cc
  DEPS smig_migrator_engine smig_fake_agents)
smig_unit_test(migration_journal_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/migration_journal_test.cc
  DEPS smig_migrator_engine smig_store_fakes)
