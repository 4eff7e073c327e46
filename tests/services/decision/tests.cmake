# MDM (smig-decision): the engine with a fake clock; the adapter and the automatic loop over a
# real GrpcServer with fake PMM/SMM clients, and the gRPC clients against fake PMM/SMM servers.
set(_mdm ${CMAKE_CURRENT_LIST_DIR})
smig_unit_test(decision_engine_test SRCS ${_mdm}/decision_engine_test.cc
  DEPS smig_decision_engine prometheus-cpp::core)
smig_unit_test(decision_service_test SRCS ${_mdm}/decision_service_test.cc
  DEPS smig_decision_service smig_grpc_server)
# MDM replicas on one store (MemoryStore + FakeElection): the policy in the store, the leader
# alone acting, takeover.
smig_unit_test(decision_replicas_test SRCS ${_mdm}/replicas_test.cc
  DEPS smig_decision_service smig_store_fakes)
# Two replicas on a real etcd (each test starts its own, leases of 1 s; under 5 s each).
smig_unit_test(decision_replicas_etcd_test SRCS ${_mdm}/replicas_etcd_test.cc
  DEPS smig_decision_service smig_store_config smig_etcd_process prometheus-cpp::core)
# The automatic loop over a fleet whose nearest edge is too small (fake SMM with migrations
# in flight): never over max_load, at most max_migrations_per_server in flight, spread.
smig_unit_test(decision_fleet_capacity_test SRCS ${_mdm}/fleet_capacity_test.cc
  DEPS smig_decision_service)
