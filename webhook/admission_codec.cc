#include "webhook/admission_codec.h"

#include "policy/document.h"

namespace hybrid_guard::webhook {

using nlohmann::json;
using policy::Operation;

namespace {

std::optional<CodecError> fail(std::string message) {
  return CodecError{std::move(message)};
}

const json* optionalMember(const json& parent, const char* key) {
  auto it = parent.find(key);
  if (it == parent.end() || it->is_null()) return nullptr;
  return &*it;
}

// What decodeAdmissionReview and decide() read of a review: the envelope fields checked below,
// and of the objects what policy::objectReads() names. The rest of a body is read and checked
// but not built.
const policy::KeepSchema& reviewReads() {
  static const policy::KeepSchema schema = [] {
    using policy::KeepSchema;
    using Members = std::vector<KeepSchema::Member>;
    auto all = KeepSchema::all;
    KeepSchema object = policy::objectReads();
    KeepSchema request = KeepSchema::object(Members{
        {"uid", all()},
        {"kind", all()},
        {"namespace", all()},
        {"name", all()},
        {"operation", all()},
        {"userInfo", KeepSchema::object(Members{{"username", all()}, {"groups", all()}})},
        {"dryRun", all()},
        {"object", object},
        {"oldObject", object},
    });
    return KeepSchema::object(
        Members{{"apiVersion", all()}, {"kind", all()}, {"request", std::move(request)}});
  }();
  return schema;
}

}  // namespace

DecodedReview::~DecodedReview() {
  request.object = nullptr;
  request.oldObject = nullptr;
  policy::releaseDocument(review);
}

bool isAdmissionReview(const json& value) {
  if (!value.is_object()) return false;
  auto kind = value.find("kind");
  auto apiVersion = value.find("apiVersion");
  return kind != value.end() && kind->is_string() && *kind == "AdmissionReview" &&
         apiVersion != value.end() && apiVersion->is_string() &&
         apiVersion->get_ref<const std::string&>().rfind("admission.k8s.io/", 0) == 0;
}

std::optional<CodecError> decodeAdmissionReview(std::string_view body, DecodedReview& out) {
  policy::ParseLimits limits;
  limits.lineDepth = -1;
  limits.maxBytes = body.size();
  if (body.empty()) return fail("empty body: expected an AdmissionReview");
  // Strict JSON only: a webhook body is never YAML.
  char first = 0;
  for (char c : body) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      first = c;
      break;
    }
  }
  if (first != '{') return fail("malformed JSON: expected an AdmissionReview object");
  auto review = policy::parseJsonKeeping(body, reviewReads(), limits);
  if (!review) return fail("malformed JSON: " + review.error().message);
  return decodeAdmissionReview(std::move(*review), out);
}

std::optional<CodecError> decodeAdmissionReview(json review, DecodedReview& out) {
  out.review = std::move(review);
  const json& root = out.review;
  if (!root.is_object()) return fail("the body must be a JSON object (an AdmissionReview)");
  const json* apiVersion = optionalMember(root, "apiVersion");
  if (!apiVersion || !apiVersion->is_string()) return fail("apiVersion is missing");
  out.apiVersion = apiVersion->get<std::string>();
  if (out.apiVersion != "admission.k8s.io/v1" && out.apiVersion != "admission.k8s.io/v1beta1") {
    return fail("apiVersion \"" + out.apiVersion +
                "\" is not admission.k8s.io/v1 or admission.k8s.io/v1beta1");
  }
  const json* kind = optionalMember(root, "kind");
  if (!kind || !kind->is_string() || *kind != "AdmissionReview") {
    return fail("kind must be AdmissionReview");
  }
  const json* request = optionalMember(root, "request");
  if (!request) return fail("request is missing");
  if (!request->is_object()) return fail("request must be an object");
  policy::AdmissionRequest& req = out.request;

  const json* uid = optionalMember(*request, "uid");
  if (!uid || !uid->is_string() || uid->get_ref<const std::string&>().empty()) {
    return fail("request.uid is missing or not a non-empty string");
  }
  req.uid = uid->get<std::string>();

  const json* gvk = optionalMember(*request, "kind");
  if (!gvk || !gvk->is_object())
    return fail("request.kind must be an object {group, version, kind}");
  for (const char* field : {"group", "version", "kind"}) {
    const json* v = optionalMember(*gvk, field);
    if (v && !v->is_string())
      return fail(std::string("request.kind.") + field + " must be a string");
  }
  req.kind.group = gvk->value("group", "");
  req.kind.version = gvk->value("version", "");
  req.kind.kind = gvk->value("kind", "");
  if (req.kind.kind.empty()) return fail("request.kind.kind is missing");

  for (auto [field, target] :
       {std::pair{"namespace", &req.namespace_}, std::pair{"name", &req.name}}) {
    const json* v = optionalMember(*request, field);
    if (v && !v->is_string()) return fail(std::string("request.") + field + " must be a string");
    if (v) *target = v->get<std::string>();
  }

  const json* operation = optionalMember(*request, "operation");
  if (!operation || !operation->is_string()) return fail("request.operation is missing");
  const auto& op = operation->get_ref<const std::string&>();
  if (op == "CREATE") {
    req.operation = Operation::Create;
  } else if (op == "UPDATE") {
    req.operation = Operation::Update;
  } else if (op == "DELETE") {
    req.operation = Operation::Delete;
  } else if (op == "CONNECT") {
    req.operation = Operation::Connect;
  } else {
    return fail("request.operation \"" + op + "\" is not CREATE, UPDATE, DELETE or CONNECT");
  }

  if (const json* user = optionalMember(*request, "userInfo")) {
    if (!user->is_object()) return fail("request.userInfo must be an object");
    if (const json* name = optionalMember(*user, "username")) {
      if (!name->is_string()) return fail("request.userInfo.username must be a string");
      req.user.username = name->get<std::string>();
    }
    if (const json* groups = optionalMember(*user, "groups")) {
      if (!groups->is_array()) return fail("request.userInfo.groups must be a list of strings");
      for (const auto& g : *groups) {
        if (!g.is_string()) return fail("request.userInfo.groups must be a list of strings");
        req.user.groups.push_back(g.get<std::string>());
      }
    }
  }

  if (const json* dryRun = optionalMember(*request, "dryRun")) {
    if (!dryRun->is_boolean()) return fail("request.dryRun must be true or false");
    req.dryRun = dryRun->get<bool>();
  }

  req.object = optionalMember(*request, "object");
  req.oldObject = optionalMember(*request, "oldObject");
  if (req.object && !req.object->is_object()) return fail("request.object must be an object");
  if (req.oldObject && !req.oldObject->is_object())
    return fail("request.oldObject must be an object");
  if (!req.object && req.operation != Operation::Delete && req.operation != Operation::Connect) {
    return fail("request.object is missing for " + op);
  }
  return std::nullopt;
}

json encodeResponse(const DecodedReview& review, const policy::Decision& decision,
                    bool includePatch) {
  json response = {{"uid", review.request.uid}, {"allowed", decision.allowed}};
  if (!decision.allowed) {
    response["status"] = {
        {"code", 403}, {"reason", "Forbidden"}, {"message", decision.denialMessage()}};
  }
  auto warnings = decision.admissionWarnings();
  if (!warnings.empty()) response["warnings"] = warnings;
  if (includePatch && decision.allowed && !decision.patch.empty()) {
    response["patchType"] = "JSONPatch";
    response["patch"] = base64Encode(decision.patch.dump());
  }
  return {{"apiVersion", review.apiVersion}, {"kind", "AdmissionReview"}, {"response", response}};
}

namespace {

// Whether `s` is well-formed UTF-8, the only text nlohmann's dump copies through unchanged.
bool isUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t length = policy::utf8SequenceLength(s.substr(i));
    if (length == 0) return false;
    i += length;
  }
  return true;
}

// A JSON string as nlohmann's serializer writes valid UTF-8 with ensure_ascii off.
void appendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

}  // namespace

std::string encodeResponseBody(const DecodedReview& review, const policy::Decision& decision,
                               bool includePatch) {
  std::string message = decision.allowed ? std::string() : decision.denialMessage();
  std::vector<std::string> warnings = decision.admissionWarnings();
  bool utf8 = isUtf8(review.apiVersion) && isUtf8(review.request.uid) && isUtf8(message);
  for (const auto& w : warnings) utf8 = utf8 && isUtf8(w);
  if (!utf8) {
    // nlohmann replaces malformed sequences; rare enough to let it.
    return encodeResponse(review, decision, includePatch)
        .dump(-1, ' ', false, json::error_handler_t::replace);
  }
  // Members in the order nlohmann's sorted objects write them.
  std::string out;
  out.reserve(160 + message.size() + review.request.uid.size());
  out += "{\"apiVersion\":";
  appendJsonString(out, review.apiVersion);
  out += ",\"kind\":\"AdmissionReview\",\"response\":{\"allowed\":";
  out += decision.allowed ? "true" : "false";
  if (includePatch && decision.allowed && !decision.patch.empty()) {
    out += ",\"patch\":\"";
    out += base64Encode(decision.patch.dump());
    out += "\",\"patchType\":\"JSONPatch\"";
  }
  if (!decision.allowed) {
    out += ",\"status\":{\"code\":403,\"message\":";
    appendJsonString(out, message);
    out += ",\"reason\":\"Forbidden\"}";
  }
  out += ",\"uid\":";
  appendJsonString(out, review.request.uid);
  if (!warnings.empty()) {
    out += ",\"warnings\":[";
    for (size_t i = 0; i < warnings.size(); ++i) {
      if (i > 0) out += ',';
      appendJsonString(out, warnings[i]);
    }
    out += ']';
  }
  out += "}}";
  return out;
}

std::string base64Encode(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t n = (static_cast<uint8_t>(data[i]) << 16) | (static_cast<uint8_t>(data[i + 1]) << 8) |
                 static_cast<uint8_t>(data[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i < data.size()) {
    uint32_t n = static_cast<uint8_t>(data[i]) << 16;
    if (i + 1 < data.size()) n |= static_cast<uint8_t>(data[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < data.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace hybrid_guard::webhook
