#include "tests/integration/grpc_prober.h"

#include <grpcpp/generic/generic_stub.h>

#include <random>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"

namespace smig::testbed {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using WireFormat = google::protobuf::internal::WireFormatLite;

class RandomFiller {
 public:
  RandomFiller(uint64_t seed, uint64_t smallest) : rng_(seed), smallest_(smallest) {}

  void Fill(Message& m, int depth) {
    const Descriptor* d = m.GetDescriptor();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (f->containing_oneof() != nullptr && Coin()) continue;  // some oneofs stay unset
      if (f->message_type() != nullptr && depth >= 3) continue;
      if (!f->is_repeated()) {
        if (Coin()) Set(m, f, depth);
        continue;
      }
      for (int n = Pick(4); n > 0; --n) Set(m, f, depth);
    }
  }

 private:
  bool Coin() { return rng_() % 2 == 0; }
  int Pick(int n) { return static_cast<int>(rng_() % n); }
  uint64_t Integer() {  // edge values and large random ones, never a small id
    switch (Pick(4)) {
      case 0: return 0;
      case 1: return ~uint64_t{0};
      case 2: return uint64_t{1} << 63;
      default: return smallest_ + rng_() % (~uint64_t{0} - smallest_);
    }
  }
  std::string Text() {  // printable, so that proto3 strings (UTF-8) decode
    static constexpr char kChars[] = "abcXYZ019 :/.-_%\\\"{}[]";
    std::string s(Pick(4) == 0 ? 300 : Pick(24), ' ');
    for (char& c : s) c = kChars[Pick(sizeof(kChars) - 1)];
    return s;
  }
  void Set(Message& m, const FieldDescriptor* f, int depth) {
    const Reflection* r = m.GetReflection();
    const bool rep = f->is_repeated();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: {
        int32_t v = static_cast<int32_t>(Integer());
        rep ? r->AddInt32(&m, f, v) : r->SetInt32(&m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t v = static_cast<int64_t>(Integer());
        rep ? r->AddInt64(&m, f, v) : r->SetInt64(&m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        uint32_t v = static_cast<uint32_t>(Integer());
        rep ? r->AddUInt32(&m, f, v) : r->SetUInt32(&m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t v = Integer();
        rep ? r->AddUInt64(&m, f, v) : r->SetUInt64(&m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_DOUBLE: {
        double v = Pick(3) == 0 ? -1e308 : static_cast<double>(Integer());
        rep ? r->AddDouble(&m, f, v) : r->SetDouble(&m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_FLOAT: {
        float v = Pick(3) == 0 ? -3e38f : static_cast<float>(Integer());
        rep ? r->AddFloat(&m, f, v) : r->SetFloat(&m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        bool v = Coin();
        rep ? r->AddBool(&m, f, v) : r->SetBool(&m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {  // open enums: unnamed numbers too
        int v = Coin() ? Pick(8) : static_cast<int32_t>(Integer());
        rep ? r->AddEnumValue(&m, f, v) : r->SetEnumValue(&m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string v = Text();
        rep ? r->AddString(&m, f, v) : r->SetString(&m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        Fill(rep ? *r->AddMessage(&m, f) : *r->MutableMessage(&m, f), depth + 1);
        break;
    }
  }

  std::mt19937_64 rng_;
  uint64_t smallest_;
};

// Every field of `d` once, each on a wire type its declaration does not have.
std::string WrongWireTypes(const Descriptor* d) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream raw(&out);
    google::protobuf::io::CodedOutputStream coded(&raw);
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (WireFormat::WireTypeForFieldType(static_cast<WireFormat::FieldType>(f->type())) ==
          WireFormat::WIRETYPE_LENGTH_DELIMITED) {
        WireFormat::WriteUInt64(f->number(), 0xdeadbeef, &coded);  // a varint
      } else {
        WireFormat::WriteBytes(f->number(), "\xff\x00\x01not-a-number", &coded);
      }
    }
  }
  return out;
}

ProbeResult Call(grpc::GenericStub& stub, const std::string& method, const std::string& input,
                 const std::string& bytes, absl::Duration deadline) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&ctx, method, &cq);
  void* tag = nullptr;
  bool ok = false;
  auto step = [&](int id) {  // each operation completes before the next starts
    return cq.Next(&tag, &ok) && tag == reinterpret_cast<void*>(static_cast<intptr_t>(id)) && ok;
  };
  auto id = [](int n) { return reinterpret_cast<void*>(static_cast<intptr_t>(n)); };
  call->StartCall(id(1));
  if (step(1)) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    call->Write(request, id(2));
    if (step(2)) {
      call->WritesDone(id(3));
      (void)step(3);
    }
    for (int n = 0; n < 64; ++n) {  // a streaming answer: read until it ends or the deadline
      grpc::ByteBuffer response;
      call->Read(&response, id(4));
      if (!step(4)) break;
    }
  }
  grpc::Status status;
  call->Finish(&status, id(5));
  while (cq.Next(&tag, &ok) && tag != id(5)) {
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return {method, input, status.error_code(), status.error_message()};
}

}  // namespace

std::vector<ProbeResult> ProbeEveryMethod(const std::shared_ptr<grpc::Channel>& channel,
                                          const std::string& service,
                                          const ProbeOptions& options) {
  const google::protobuf::ServiceDescriptor* s =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
  std::vector<ProbeResult> results;
  if (s == nullptr) return results;
  grpc::GenericStub stub(channel);
  google::protobuf::DynamicMessageFactory factory;
  RandomFiller filler(options.seed, options.smallest_random_integer);
  for (int i = 0; i < s->method_count(); ++i) {
    const google::protobuf::MethodDescriptor* m = s->method(i);
    const std::string name = absl::StrCat("/", service, "/", m->name());
    const absl::Duration deadline =
        m->server_streaming() ? options.stream_deadline : options.deadline;
    results.push_back(Call(stub, name, "undecodable",
                           std::string("\x0a\xff\xff\xff\xff\x0f", 6) + "garbage", deadline));
    results.push_back(
        Call(stub, name, "wrong wire types", WrongWireTypes(m->input_type()), deadline));
    for (int k = 0; k < options.random_messages; ++k) {
      std::unique_ptr<Message> request(factory.GetPrototype(m->input_type())->New());
      filler.Fill(*request, 0);
      results.push_back(Call(stub, name, absl::StrCat("random #", k + 1),
                             request->SerializeAsString(), deadline));
    }
  }
  return results;
}

}  // namespace smig::testbed
