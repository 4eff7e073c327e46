// Early returns for absl::Status and absl::StatusOr, so a chain of fallible calls reads as
// a list of steps:
//
//   absl::StatusOr<Config> Load(const std::string& path) {
//     SMIG_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
//     Config config;
//     SMIG_RETURN_IF_ERROR(Parse(text, config));
//     return config;
//   }
//
// Both return the error unchanged (code and message). SMIG_ASSIGN_OR_RETURN declares or
// assigns its left-hand side; it expands to several statements, so it cannot be the body
// of an unbraced if/else.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SMIG_RETURN_IF_ERROR(expr)                                   \
  do {                                                               \
    if (::absl::Status smig_status_ = (expr); !smig_status_.ok()) {  \
      return smig_status_;                                           \
    }                                                                \
  } while (false)

#define SMIG_STATUS_MACROS_CONCAT_INNER(a, b) a##b
#define SMIG_STATUS_MACROS_CONCAT(a, b) SMIG_STATUS_MACROS_CONCAT_INNER(a, b)

#define SMIG_ASSIGN_OR_RETURN(lhs, rexpr) \
  SMIG_ASSIGN_OR_RETURN_IMPL(SMIG_STATUS_MACROS_CONCAT(smig_statusor_, __LINE__), lhs, rexpr)

#define SMIG_ASSIGN_OR_RETURN_IMPL(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                               \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(*statusor)
