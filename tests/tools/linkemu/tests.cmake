# smig-linkemu: the model (unit) and the tool against real traffic between namespaces
# (integration; needs root, skipped otherwise): what a link does to traffic (shaping) and
# its control and lifecycle, on one bed (linkemu_fixture.h).
if(TARGET smig-linkemu)
  smig_unit_test(linkemu_model_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/link_model_test.cc DEPS smig_linkemu_model)
  smig_binary(linkemu_integration
    SRCS ${CMAKE_CURRENT_LIST_DIR}/linkemu_fixture.cc
         ${CMAKE_CURRENT_LIST_DIR}/linkemu_shaping_test.cc
         ${CMAKE_CURRENT_LIST_DIR}/linkemu_control_test.cc
    DEPS smig_netns smig_unique_fd absl::status absl::statusor absl::strings absl::str_format
         absl::time GTest::gtest_main)
  target_compile_definitions(linkemu_integration PRIVATE
    SMIG_LINKEMU="$<TARGET_FILE:smig-linkemu>")
  add_dependencies(linkemu_integration smig-linkemu)
  gtest_discover_tests(linkemu_integration TEST_PREFIX "linkemu."
    DISCOVERY_MODE PRE_TEST PROPERTIES LABELS "integration" TIMEOUT 120 RUN_SERIAL TRUE)
endif()
