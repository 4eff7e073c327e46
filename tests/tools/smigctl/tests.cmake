# smigctl: parsing and rendering without servers, and the real binary against a fake SMM.
set(_smigctl_tests ${CMAKE_CURRENT_LIST_DIR})
smig_unit_test(smigctl_command_test
  SRCS ${_smigctl_tests}/command_test.cc DEPS smigctl_lib)
smig_unit_test(smigctl_render_test
  SRCS ${_smigctl_tests}/render_test.cc DEPS smigctl_lib)
smig_unit_test(smigctl_cli_test
  SRCS ${_smigctl_tests}/smigctl_cli_test.cc
  DEPS smig_proto smig_grpc_server smig_migrator_service prometheus-cpp::core gRPC::grpc++
       absl::strings absl::synchronization)
target_compile_definitions(smigctl_cli_test PRIVATE SMIGCTL_PATH="$<TARGET_FILE:smigctl>")
add_dependencies(smigctl_cli_test smigctl)
