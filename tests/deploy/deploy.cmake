# Checks of deploy/, the Dockerfile and the metrics contract: label "deploy".
# Tools: node and npm (kubernetes-models, yaml: deploy.npm_ci installs them into
# tests/deploy/node_modules, the only step that needs the network), kubectl (kustomize v4+),
# promtool (Debian prometheus), /usr/bin/python3 with python3-protobuf, protoc, ldd and
# dpkg, openssl. A missing tool fails its test with a message, it never skips.
set(_deploy_src ${CMAKE_CURRENT_LIST_DIR})
set(_deploy_out ${CMAKE_CURRENT_BINARY_DIR}/deploy)

# smig_deploy_test(NAME COMMAND ... [NEEDS fixture...] [PROVIDES fixture]): one check,
# run from the source tree.
function(smig_deploy_test name)
  cmake_parse_arguments(ARG "" "PROVIDES" "COMMAND;NEEDS" ${ARGN})
  add_test(NAME deploy.${name} COMMAND ${ARG_COMMAND} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(deploy.${name} PROPERTIES LABELS deploy TIMEOUT 300)
  if(ARG_NEEDS)
    set_tests_properties(deploy.${name} PROPERTIES FIXTURES_REQUIRED "${ARG_NEEDS}")
  endif()
  if(ARG_PROVIDES)
    set_tests_properties(deploy.${name} PROPERTIES FIXTURES_SETUP ${ARG_PROVIDES})
  endif()
endfunction()

smig_deploy_test(npm_ci PROVIDES deploy_npm
  COMMAND npm ci --prefix ${_deploy_src} --no-audit --no-fund --prefer-offline)
smig_deploy_test(render PROVIDES deploy_render
  COMMAND node ${_deploy_src}/render.mjs ${_deploy_out}/render)
smig_deploy_test(schema NEEDS deploy_npm deploy_render
  COMMAND node ${_deploy_src}/validate.mjs ${_deploy_out}/render)
# The unknown-field check must catch planted typos, or deploy.schema proves nothing.
smig_deploy_test(schema_negative NEEDS deploy_npm
  COMMAND node ${_deploy_src}/validate_negative.mjs ${_deploy_src}/fixtures/misspelled.yaml)
smig_deploy_test(manifests NEEDS deploy_npm deploy_render
  COMMAND node ${_deploy_src}/check_manifests.mjs ${_deploy_out}/render)
smig_deploy_test(configs COMMAND /usr/bin/python3 ${_deploy_src}/check_configs.py ${_deploy_out})
smig_deploy_test(rules_check COMMAND promtool check rules ${PROJECT_SOURCE_DIR}/deploy/prometheus/rules.yaml)
smig_deploy_test(rules_test COMMAND promtool test rules ${_deploy_src}/rules_test.yaml)
smig_deploy_test(rules_sync NEEDS deploy_npm COMMAND node ${_deploy_src}/sync_rules.mjs)
smig_deploy_test(dashboard COMMAND node ${_deploy_src}/check_dashboard.mjs)
smig_deploy_test(metrics_contract NEEDS deploy_npm COMMAND node ${_deploy_src}/check_metrics_contract.mjs)
smig_deploy_test(dockerfile COMMAND node ${_deploy_src}/check_dockerfile.mjs)
# Reads the binaries of this build tree: ctest runs after the build.
smig_deploy_test(runtime_libs COMMAND node ${_deploy_src}/check_runtime_libs.mjs ${CMAKE_BINARY_DIR})
# Mutual TLS for real: make-tls-secret's certificate, and the servers of this build tree with
# their rendered configs and probe commands on loopback ports (tests/deploy/tls_live.mjs).
# No root needed.
smig_deploy_test(tls_live NEEDS deploy_npm deploy_render
  COMMAND node ${_deploy_src}/tls_live.mjs ${CMAKE_BINARY_DIR} ${_deploy_out}/render)
# A real Prometheus scrapes a short edge demo (tests/deploy/live_scenario.yaml, run from
# build/): every dashboard and alert query returns data, every /metrics passes promtool.
# Needs root (network namespaces): skipped (77) otherwise.
smig_deploy_test(live_prometheus NEEDS deploy_npm
  COMMAND node ${_deploy_src}/live_prometheus.mjs)
set_tests_properties(deploy.live_prometheus PROPERTIES TIMEOUT 400 SKIP_RETURN_CODE 77)
