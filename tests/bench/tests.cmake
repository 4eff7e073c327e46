# The radio-matrix benchmark's goal rules and report (bench/radio_matrix) on synthetic
# numbers: no namespaces, no root. The benchmark itself is bench/radio-matrix.
get_filename_component(_rm_root ${CMAKE_CURRENT_LIST_DIR}/../.. ABSOLUTE)
add_test(NAME bench.radio_matrix.goals
  COMMAND /usr/bin/python3 -m unittest -v test_radio_matrix_goals
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(bench.radio_matrix.goals PROPERTIES LABELS unit TIMEOUT 60
  ENVIRONMENT PYTHONPATH=${_rm_root}/bench:${_rm_root}/scripts)
