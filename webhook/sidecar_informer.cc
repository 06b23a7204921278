#include "webhook/sidecar_informer.h"

#include "policy/sidecar_view.h"

namespace hybrid_guard::webhook {

using nlohmann::json;

namespace {

std::string stringAt(const json& object, const char* a, const char* b) {
  if (!object.is_object()) return {};
  auto outer = object.find(a);
  if (outer == object.end() || !outer->is_object()) return {};
  auto inner = outer->find(b);
  return inner != outer->end() && inner->is_string() ? inner->get<std::string>() : std::string();
}

struct ReadSidecar {
  ObjectKey key;
  std::string uid;
  std::optional<policy::HybridSidecar> hybrid;  // set when stored as hybrid
};

std::optional<ReadSidecar> readStored(const json& object) {
  ReadSidecar out;
  out.key = {stringAt(object, "metadata", "namespace"), stringAt(object, "metadata", "name")};
  out.uid = stringAt(object, "metadata", "uid");
  if (out.key.first.empty() || out.key.second.empty()) return std::nullopt;
  // Stored objects are trusted (DESIGN §2): one with an ingress tls counts even if today's
  // policy, or a shape check, would refuse it.
  policy::SidecarRead read = policy::readSidecar(object, out.key.first);
  if (read.view.hybrid()) {
    read.view.namespace_ = out.key.first;
    read.view.name = out.key.second;
    out.hybrid = read.view.toHybridSidecar();
  }
  return out;
}

}  // namespace

SidecarInformer::SidecarInformer(KubeClient& client, StateStore& state, ClusterMetrics& metrics,
                                 EventLog log, Options options, Observer observer,
                                 StateStore::ChangeObserver onCount)
    : client_(client),
      state_(state),
      metrics_(metrics),
      log_(std::move(log)),
      options_(options),
      observer_(std::move(observer)),
      onCount_(std::move(onCount)) {}

SidecarInformer::~SidecarInformer() {
  stop();
}

void SidecarInformer::start() {
  thread_ = std::thread([this] { run(); });
}

void SidecarInformer::stop() {
  {
    std::lock_guard lock(wakeMutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  client_.cancelStreams();
  if (thread_.joinable()) thread_.join();
}

std::string SidecarInformer::version() const {
  std::lock_guard lock(mutex_);
  return version_;
}

std::map<ObjectKey, std::string> SidecarInformer::storedHybrid() const {
  std::lock_guard lock(mutex_);
  return hybrid_;
}

bool SidecarInformer::sleepFor(std::chrono::milliseconds duration) {
  std::unique_lock lock(wakeMutex_);
  wake_.wait_for(lock, duration, [this] { return stopping_.load(); });
  return !stopping_;
}

std::string SidecarInformer::collectionPath() const {
  return "/apis/networking.istio.io/" + version() + "/sidecars";
}

void SidecarInformer::run() {
  auto backoff = options_.backoffMin;
  auto nextBackoff = [&] {
    auto current = backoff;
    backoff = std::min(backoff * 2, options_.backoffMax);
    return current;
  };
  while (!stopping_ && !discoverVersion()) {
    if (!sleepFor(nextBackoff())) return;
  }
  backoff = options_.backoffMin;
  std::string resourceVersion;
  bool needList = true;
  while (!stopping_) {
    if (needList) {
      if (!list(resourceVersion)) {
        if (!sleepFor(nextBackoff())) return;
        continue;
      }
      needList = false;
      backoff = options_.backoffMin;
    }
    switch (watch(resourceVersion)) {
      case WatchEnd::Stopped:
        return;
      case WatchEnd::Closed:
        backoff = options_.backoffMin;
        if (std::chrono::steady_clock::now() - listedAt_ >= options_.relistInterval) {
          metrics_.countWatchRestart("relist");
          needList = true;
        } else {
          metrics_.countWatchRestart("closed");
        }
        break;
      case WatchEnd::Gone:
        metrics_.countWatchRestart("gone");
        log_(spdlog::level::info, "sidecar watch expired (410 Gone); listing again",
             {{"resource_version", resourceVersion}});
        needList = true;
        break;
      case WatchEnd::Relist:
        metrics_.countWatchRestart("relist");
        needList = true;
        break;
      case WatchEnd::Failed: {
        metrics_.countWatchRestart("error");
        auto wait = nextBackoff();
        if (!sleepFor(wait)) return;
        break;
      }
    }
  }
}

bool SidecarInformer::discoverVersion() {
  auto response = client_.get("/apis/networking.istio.io", options_.requestTimeout);
  if (!response) {
    log_(spdlog::level::warn, "cannot discover networking.istio.io", {{"error", response.error()}});
    return false;
  }
  const KubeResponse& r = response.value();
  if (!r.ok()) {
    log_(spdlog::level::warn, "cannot discover networking.istio.io (are the Istio CRDs installed?)",
         {{"status", r.status}, {"error", r.message()}});
    return false;
  }
  json group = json::parse(r.body, nullptr, false);
  std::string version;
  if (group.is_object() && group.contains("preferredVersion") &&
      group["preferredVersion"].is_object()) {
    version = stringAt(group, "preferredVersion", "version");
  }
  if (version.empty() || version.find('/') != std::string::npos) {
    log_(spdlog::level::warn, "networking.istio.io names no preferred version",
         {{"body", r.message()}});
    return false;
  }
  {
    std::lock_guard lock(mutex_);
    version_ = version;
  }
  log_(spdlog::level::info, "watching Sidecars", {{"version", "networking.istio.io/" + version}});
  return true;
}

bool SidecarInformer::list(std::string& resourceVersion) {
  policy::State next;
  std::map<ObjectKey, std::string> hybrid;
  std::string continueToken;
  std::string listVersion;
  size_t objects = 0;
  do {
    std::string path = collectionPath() + "?limit=" + std::to_string(options_.pageSize);
    if (!continueToken.empty()) path += "&continue=" + urlEncode(continueToken);
    auto response = client_.get(path, options_.requestTimeout);
    if (!response) {
      log_(spdlog::level::warn, "listing Sidecars failed", {{"error", response.error()}});
      return false;
    }
    const KubeResponse& r = response.value();
    if (r.status == 410 && !continueToken.empty()) {
      log_(spdlog::level::info, "Sidecar list continuation expired; listing from the start", {});
      next = {};
      hybrid.clear();
      continueToken.clear();
      objects = 0;
      continue;
    }
    if (!r.ok()) {
      log_(spdlog::level::warn, "listing Sidecars failed",
           {{"status", r.status}, {"error", r.message()}});
      return false;
    }
    json page = json::parse(r.body, nullptr, false);
    if (!page.is_object() || !page.contains("items") || !page["items"].is_array()) {
      log_(spdlog::level::warn, "listing Sidecars: not a list", {{"body", r.message()}});
      return false;
    }
    for (const auto& item : page["items"]) {
      ++objects;
      auto read = readStored(item);
      if (!read || !read->hybrid) continue;
      hybrid[read->key] = read->uid;
      next.upsert(std::move(*read->hybrid));
    }
    listVersion = stringAt(page, "metadata", "resourceVersion");
    continueToken = stringAt(page, "metadata", "continue");
  } while (!continueToken.empty() && !stopping_);
  if (stopping_) return false;
  if (listVersion.empty()) {
    log_(spdlog::level::warn, "Sidecar list without resourceVersion", {});
    return false;
  }
  size_t hybridCount = hybrid.size();
  state_.replaceAll(std::move(next), onCount_);
  {
    std::lock_guard lock(mutex_);
    hybrid_ = std::move(hybrid);
  }
  resourceVersion = listVersion;
  listedAt_ = std::chrono::steady_clock::now();
  bool first = !synced_.exchange(true);
  metrics_.setSynced(true);
  log_(spdlog::level::info, first ? "cluster state synced" : "Sidecars listed again",
       {{"sidecars", objects}, {"hybrid", hybridCount}, {"resource_version", listVersion}});
  if (observer_.onListed) observer_.onListed();
  return true;
}

SidecarInformer::WatchEnd SidecarInformer::watch(std::string& resourceVersion) {
  std::string path = collectionPath() + "?watch=true&allowWatchBookmarks=true&resourceVersion=" +
                     urlEncode(resourceVersion) +
                     "&timeoutSeconds=" + std::to_string(options_.watchTimeout.count());
  WatchEnd end = WatchEnd::Closed;
  bool sawEvent = false;
  std::string errorBody;
  auto status = client_.stream(
      path,
      [&](std::string_view line) {
        json event = json::parse(line, nullptr, false);
        if (!event.is_object()) {
          log_(spdlog::level::warn, "unreadable watch event; reconnecting",
               {{"line", std::string(line.substr(0, 200))}});
          end = WatchEnd::Failed;
          return false;
        }
        sawEvent = true;
        if (!handleEvent(event, resourceVersion, end)) return false;
        if (std::chrono::steady_clock::now() - listedAt_ >= options_.relistInterval) {
          end = WatchEnd::Relist;
          return false;
        }
        return true;
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.watchTimeout) +
          std::chrono::seconds(30),
      &errorBody);
  if (stopping_) return WatchEnd::Stopped;
  if (!status) {
    log_(spdlog::level::warn, "sidecar watch broke; reconnecting after a backoff",
         {{"error", status.error()}, {"events", sawEvent}});
    return WatchEnd::Failed;
  }
  if (status.value() == 410) return WatchEnd::Gone;
  if (status.value() != 200) {
    log_(
        spdlog::level::warn, "sidecar watch refused",
        {{"status", status.value()}, {"error", KubeResponse{status.value(), errorBody}.message()}});
    return WatchEnd::Failed;
  }
  return end;
}

bool SidecarInformer::handleEvent(const json& event, std::string& resourceVersion, WatchEnd& end) {
  std::string type = event.contains("type") && event["type"].is_string()
                         ? event["type"].get<std::string>()
                         : std::string();
  metrics_.countWatchEvent(type);
  const json& object = event.contains("object") ? event["object"] : json();
  if (type == "ERROR") {
    int code = object.is_object() && object.contains("code") && object["code"].is_number_integer()
                   ? object["code"].get<int>()
                   : 0;
    end = code == 410 ? WatchEnd::Gone : WatchEnd::Failed;
    if (code != 410) {
      log_(spdlog::level::warn, "sidecar watch error event",
           {{"code", code}, {"error", KubeResponse{code, object.dump()}.message()}});
    }
    return false;
  }
  std::string version = stringAt(object, "metadata", "resourceVersion");
  if (type == "BOOKMARK") {
    if (!version.empty()) resourceVersion = version;
    return true;
  }
  if (type != "ADDED" && type != "MODIFIED" && type != "DELETED") {
    log_(spdlog::level::warn, "unknown watch event type; reconnecting", {{"type", type}});
    end = WatchEnd::Failed;
    return false;
  }
  apply(type, object);
  if (!version.empty()) resourceVersion = version;
  return true;
}

void SidecarInformer::apply(const std::string& type, const json& object) {
  auto read = readStored(object);
  if (!read) return;
  std::optional<std::string> goneUid;
  {
    std::lock_guard lock(mutex_);
    auto it = hybrid_.find(read->key);
    if (type != "DELETED" && read->hybrid) {
      hybrid_[read->key] = read->uid;
    } else if (it != hybrid_.end()) {
      goneUid = it->second;
      hybrid_.erase(it);
    }
  }
  if (type != "DELETED" && read->hybrid) {
    state_.upsertStored(std::move(*read->hybrid), onCount_);
  } else {
    state_.removeStored(read->key.first, read->key.second, onCount_);
    if (goneUid && observer_.onGone) {
      observer_.onGone(read->key, *goneUid, std::chrono::system_clock::now());
    }
  }
}

}  // namespace hybrid_guard::webhook
