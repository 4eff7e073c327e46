# smig_library(NAME SRCS ... DEPS ...): one small library per concern, with smig's warnings.
function(smig_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SRCS})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE smig_warnings)
endfunction()

# smig_binary(NAME SRCS ... DEPS ...): an executable with smig's warnings.
function(smig_binary name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} smig_warnings)
endfunction()
