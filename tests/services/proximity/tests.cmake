# PMM (services/proximity) unit tests; included by tests/CMakeLists.txt.
set(_pmm ${CMAKE_CURRENT_LIST_DIR})
smig_unit_test(proximity_engine_test
  SRCS ${_pmm}/proximity_engine_test.cc DEPS smig_proximity_engine prometheus-cpp::core)
smig_unit_test(proximity_service_test
  SRCS ${_pmm}/proximity_service_test.cc DEPS smig_proximity_service smig_grpc_server)
# Runs a fake Kubernetes API with python3 on 127.0.0.1.
smig_unit_test(kubernetes_discovery_test
  SRCS ${_pmm}/kubernetes_discovery_test.cc DEPS smig_kubernetes_discovery smig_testbed)
smig_unit_test(proximity_main_test
  SRCS ${_pmm}/proximity_main_test.cc DEPS smig_proto smig_testbed gRPC::grpc++)
target_compile_definitions(proximity_main_test PRIVATE SMIG_PROXIMITY="$<TARGET_FILE:smig-proximity>")
add_dependencies(proximity_main_test smig-proximity)
