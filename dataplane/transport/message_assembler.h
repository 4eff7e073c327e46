// MessageAssembler: joins the pieces in which SCTP stacks hand up large messages (no
// MSG_EOR until the last one) back into whole messages, per (association, stream).
//
//   MessageAssembler a(1 << 20);
//   absl::StatusOr<std::optional<std::string>> whole = a.Add(key, piece, eor);
//
// A message that grows past the limit is dropped whole: Add() returns RESOURCE_EXHAUSTED
// once, and swallows the rest of its pieces.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace smig::transport {

class MessageAssembler {
 public:
  struct Key {
    uint32_t assoc = 0;
    uint16_t stream = 0;
    bool notification = false;
    friend bool operator==(const Key&, const Key&) = default;
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.assoc, k.stream, k.notification);
    }
  };

  explicit MessageAssembler(size_t max_message_size) : max_(max_message_size) {}

  // Returns the whole message when `end_of_record` completes it, nullopt while pieces are
  // still missing.
  absl::StatusOr<std::optional<std::string>> Add(const Key& key, absl::string_view piece,
                                                 bool end_of_record);
  // Drops partial messages of an association that ended.
  void Forget(uint32_t assoc);
  size_t pending() const { return partial_.size(); }

 private:
  struct Partial {
    std::string data;
    bool discarding = false;
  };
  size_t max_;
  absl::flat_hash_map<Key, Partial> partial_;
};

}  // namespace smig::transport
