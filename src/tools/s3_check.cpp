#include "tools/s3_check.hpp"

#include "s3/s3_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>
#include <pugixml.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <random>
#include <sstream>

namespace mxcd {

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using Verdict = S3CheckFinding::Verdict;
using Probe = s3::Client::Probe;
using ProbeAnswer = s3::Client::ProbeAnswer;

// The checks in the order they are reported.
constexpr std::array<std::string_view, 17> kCheckOrder = {
    "endpoint",       "credentials",
    "region",         "bucket",
    "put-object",     "get-object",
    "head-object",    "list-objects",
    "delete-object",  "create-multipart-upload",
    "upload-part",    "abort-multipart-upload",
    "anonymous-read", "anonymous-list",
    "versioning",     "clock",
    "payload-signing"};

// SigV4 requests are refused beyond 15 minutes of skew; a minute already shows that the clock
// is not synchronised.
constexpr auto kSkewWarning = std::chrono::minutes(1);
constexpr auto kSkewRefused = std::chrono::minutes(15);

constexpr std::string_view kScratchBody =
    "A scratch object written by `mxcd s3 check`, which deletes it again. Safe to delete.\n";

enum class Provider { unknown, aws, b2, wasabi, spaces, storj, r2 };

// What the endpoint's host name tells: the provider, and for some the region.
struct EndpointHost {
  Provider provider = Provider::unknown;
  std::string region;
};

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

EndpointHost read_endpoint_host(std::string_view endpoint) {
  auto url = boost::urls::parse_absolute_uri(endpoint);
  if (!url) return {};
  const std::string host = lower(url->host());
  std::vector<std::string> labels;
  for (std::size_t start = 0;;) {
    std::size_t dot = host.find('.', start);
    labels.push_back(host.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  // s3.<region>.amazonaws.com, s3.<region>.backblazeb2.com, <region>.digitaloceanspaces.com...
  const std::string third_from_end = labels.size() >= 3 ? labels[labels.size() - 3] : "";
  // The region-less AWS and Wasabi endpoints are those of us-east-1.
  const std::string aws_style_region = third_from_end == "s3"             ? "us-east-1"
                                       : third_from_end.starts_with("s3") ? ""
                                                                          : third_from_end;
  auto under = [&](std::string_view domain) {
    return host == domain.substr(1) || host.ends_with(domain);
  };
  if (under(".amazonaws.com")) return {Provider::aws, aws_style_region};
  if (under(".backblazeb2.com")) return {Provider::b2, third_from_end};
  if (under(".wasabisys.com")) return {Provider::wasabi, aws_style_region};
  if (under(".digitaloceanspaces.com")) return {Provider::spaces, third_from_end};
  if (under(".storjshare.io")) return {Provider::storj, ""};
  if (under(".r2.cloudflarestorage.com")) return {Provider::r2, "auto"};
  return {};
}

const char* provider_name(Provider provider) {
  switch (provider) {
    case Provider::aws:
      return "AWS S3";
    case Provider::b2:
      return "Backblaze B2";
    case Provider::wasabi:
      return "Wasabi";
    case Provider::spaces:
      return "DigitalOcean Spaces";
    case Provider::storj:
      return "Storj";
    case Provider::r2:
      return "Cloudflare R2";
    case Provider::unknown:
      break;
  }
  return "";
}

// What a FAIL or WARN line is about, for the provider's hint.
enum class Topic { credentials, region, permission, privacy, versioning };

struct ProviderHint {
  Provider provider;
  Topic topic;
  const char* text;
};

// Short and factual: what to change on that provider's side.
constexpr ProviderHint kProviderHints[] = {
    {Provider::aws, Topic::region,
     "AWS: the endpoint must be the bucket's region too, https://s3.<region>.amazonaws.com."},
    {Provider::aws, Topic::permission,
     "AWS: attach an IAM policy to the key's user (docs/s3-providers.md has one)."},
    {Provider::aws, Topic::privacy, "AWS: turn on Block Public Access for the bucket."},
    {Provider::aws, Topic::versioning,
     "AWS: a lifecycle rule with NoncurrentVersionExpiration removes old versions."},
    {Provider::b2, Topic::credentials,
     "Backblaze B2: access_key_id is the application key's keyID, secret_access_key the "
     "application key itself."},
    {Provider::b2, Topic::region,
     "Backblaze B2: the region is the part between s3. and .backblazeb2.com in the endpoint."},
    {Provider::b2, Topic::permission,
     "Backblaze B2: use an application key with read and write access to this bucket."},
    {Provider::b2, Topic::privacy, "Backblaze B2: make the bucket private in its settings."},
    {Provider::b2, Topic::versioning,
     "Backblaze B2 keeps old versions in every bucket: set the bucket's lifecycle setting to "
     "keep only the last version."},
    {Provider::wasabi, Topic::region,
     "Wasabi: use the endpoint of the bucket's region, https://s3.<region>.wasabisys.com "
     "(https://s3.wasabisys.com is us-east-1)."},
    {Provider::wasabi, Topic::permission,
     "Wasabi: attach a policy allowing these actions to the key's user."},
    {Provider::wasabi, Topic::versioning,
     "Wasabi: keep versioning on only with a lifecycle rule that removes old versions."},
    {Provider::spaces, Topic::region,
     "DigitalOcean Spaces: the region is the endpoint's first label, e.g. ams3."},
    {Provider::spaces, Topic::permission,
     "DigitalOcean Spaces: use a key with read, write and delete access to this bucket."},
    {Provider::spaces, Topic::privacy,
     "DigitalOcean Spaces: restrict the bucket's file listing and make its files private."},
    {Provider::storj, Topic::region, "Storj does not check the region; us-east-1 is fine."},
    {Provider::storj, Topic::permission,
     "Storj: the access grant behind these credentials must allow read, write, list and "
     "delete."},
    {Provider::r2, Topic::credentials,
     "Cloudflare R2: the keys come from an R2 API token, not from the account's API key."},
    {Provider::r2, Topic::region, "Cloudflare R2: the region is auto."},
    {Provider::r2, Topic::permission,
     "Cloudflare R2: use an API token with Object Read & Write on this bucket."},
    {Provider::r2, Topic::privacy,
     "Cloudflare R2: turn off the bucket's public access (r2.dev and custom domains)."},
};

// What to change on the provider's side, starting with a space; empty when there is nothing
// provider-specific to say.
std::string provider_hint(const EndpointHost& host, Topic topic) {
  std::string hint;
  for (const auto& h : kProviderHints) {
    if (h.provider == host.provider && h.topic == topic) hint = std::string(" ") + h.text;
  }
  if (topic == Topic::region && !host.region.empty() && host.provider != Provider::r2) {
    hint += " The endpoint's host name points at region " + host.region + ".";
  }
  return hint;
}

bool is_credentials_error(const s3::S3Error& error) {
  return error.code == "InvalidAccessKeyId" || error.code == "SignatureDoesNotMatch" ||
         error.code == "InvalidToken" || error.code == "ExpiredToken" || error.http_status == 401;
}

// Refusals of an upload that blame the x-amz-content-sha256 value rather than the key: the
// request before it (a bodiless listing) was signed with the same key and accepted.
bool points_at_payload_signing(const s3::S3Error& error) {
  if (error.code == "XAmzContentSHA256Mismatch" || error.code == "NotImplemented" ||
      error.code == "SignatureDoesNotMatch") {
    return true;
  }
  const std::string message = lower(error.message);
  return message.find("x-amz-content-sha256") != std::string::npos ||
         message.find("unsigned-payload") != std::string::npos;
}

std::string random_hex(std::size_t digits) {
  std::random_device random;
  std::string out;
  while (out.size() < digits) out += fmt::format("{:08x}", random());
  out.resize(digits);
  return out;
}

// One store's checks, run as one coroutine on a temporary io_context.
class BucketCheck {
 public:
  BucketCheck(const S3StoreConfig& config, asio::thread_pool& pool)
      : config_(config),
        host_(read_endpoint_host(config.endpoint)),
        pool_(pool),
        client_(std::make_unique<s3::Client>(config_, pool)) {
    scratch_key_ =
        (config_.prefix.empty() ? "" : config_.prefix + "/") + "mxcd-s3-check-" + random_hex(16);
  }

  awaitable<void> run() {
    const bool reached = co_await reach_bucket();
    if (!reached) co_return;
    co_await check_versioning();
    co_await check_objects();
    co_await check_multipart();
  }

  void add(std::string_view check, Verdict verdict, std::string message) {
    findings_.push_back({std::string(check), verdict, std::move(message)});
  }

  // In the order of kCheckOrder.
  std::vector<S3CheckFinding> findings() const {
    auto rank = [](const S3CheckFinding& f) {
      return std::find(kCheckOrder.begin(), kCheckOrder.end(), f.check) - kCheckOrder.begin();
    };
    auto sorted = findings_;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
    return sorted;
  }

 private:
  std::string hint(Topic topic) const { return provider_hint(host_, topic); }

  S3CheckFinding* finding(std::string_view check) {
    for (auto& f : findings_) {
      if (f.check == check) return &f;
    }
    return nullptr;
  }

  static Probe request(std::string operation, std::string method, std::string key = {}) {
    Probe probe;
    probe.operation = std::move(operation);
    probe.method = std::move(method);
    probe.key = std::move(key);
    return probe;
  }

  static Probe listing(const std::string& prefix, bool anonymous) {
    Probe probe = request("ListObjectsV2", "GET");
    probe.query = {{"list-type", "2"}, {"max-keys", "1"}, {"prefix", prefix}};
    probe.anonymous = anonymous;
    return probe;
  }

  // The verdict on a request mxcd needs: allowed (ok_message), refused for want of a
  // permission (naming the actions the key's policy must allow), or failed otherwise.
  void judge(std::string_view check, const ProbeAnswer& answer, const std::string& operation,
             const std::string& actions, std::string ok_message) {
    if (!answer.answered) {
      add(check, Verdict::fail, operation + " got no answer: " + answer.network_problem + ".");
    } else if (!answer.error) {
      add(check, Verdict::ok, std::move(ok_message));
    } else if (answer.error->code == "AccessDenied") {
      add(check, Verdict::fail,
          operation + " was refused (AccessDenied): the key's policy must allow " + actions +
              " on this bucket." + hint(Topic::permission));
    } else {
      add(check, Verdict::fail, operation + " failed: " + answer.explanation);
    }
  }

  // The first answer with a Date header tells the skew between the clocks.
  void note_clock(const ProbeAnswer& answer) {
    if (clock_noted_) return;
    if (answer.error && answer.error->code == "RequestTimeTooSkewed") {
      clock_noted_ = true;
      add("clock", Verdict::fail, answer.explanation);
      return;
    }
    auto server_time = s3::parse_http_date(answer.date);
    if (!server_time) return;
    clock_noted_ = true;
    auto skew = std::chrono::duration_cast<std::chrono::seconds>(answer.received - *server_time);
    auto size = std::chrono::abs(skew);
    const std::string difference = "This machine's clock is " + std::to_string(size.count()) +
                                   " s " + (skew.count() > 0 ? "ahead of" : "behind") +
                                   " the server's";
    if (size > kSkewRefused) {
      add("clock", Verdict::fail,
          difference + ": SigV4 requests more than 15 minutes off are refused. Set the clock "
                       "right and keep it synchronised (systemd-timesyncd or chrony).");
    } else if (size > kSkewWarning) {
      add("clock", Verdict::warn,
          difference + ": requests will be refused once it is 15 minutes off. Synchronise the "
                       "clock (systemd-timesyncd or chrony).");
    } else {
      add("clock", Verdict::ok,
          "This machine's clock and the server's agree (" + std::to_string(size.count()) +
              " s apart, as far as the Date header's whole seconds tell).");
    }
  }

  // Checks 1 to 4 with one signed listing. Returns whether the bucket can be used for the
  // checks after them.
  awaitable<bool> reach_bucket() {
    for (int round = 0;; ++round) {
      Probe list = listing(config_.prefix, false);
      ProbeAnswer answer = co_await client_->probe(list);
      if (!answer.answered) {
        const bool tls_problem = answer.network_problem.find("TLS") != std::string::npos;
        add("endpoint", Verdict::fail,
            "No answer from " + config_.endpoint + ": " + answer.network_problem + ". " +
                (tls_problem ? "Fix the server's certificate, or trust its issuer (ca_file for "
                               "a private CA)."
                             : "Check the endpoint's scheme, host and port, DNS and firewalls.") +
                " Nothing else was checked.");
        co_return false;
      }
      if (round == 0) {
        add("endpoint", Verdict::ok,
            config_.endpoint.starts_with("https:")
                ? config_.endpoint + " answers; its TLS certificate is valid for the host name."
                : config_.endpoint + " answers over plain HTTP: keys are signed, not sent, but "
                                     "media travels unencrypted; use https beyond a trusted "
                                     "network.");
      }
      note_clock(answer);
      if (!answer.error) {
        add("credentials", Verdict::ok, "The server accepted the access key and its signature.");
        if (round == 0) co_await check_region();
        add("bucket", Verdict::ok, "Bucket \"" + config_.bucket + "\" exists and can be listed.");
        co_return true;
      }
      const s3::S3Error& error = *answer.error;
      if (error.code == "RequestTimeTooSkewed") co_return false;  // note_clock reported it
      if (is_credentials_error(error)) {
        add("credentials", Verdict::fail,
            error.code + ": " + answer.explanation + hint(Topic::credentials));
        co_return false;
      }
      if (s3::points_at_region(error, config_.region)) {
        if (round > 0) co_return false;  // the corrected region did not help either
        std::string message = answer.explanation + hint(Topic::region);
        const std::string right = error.region;
        if (right.empty() || right == config_.region) {
          add("region", Verdict::fail, std::move(message));
          co_return false;
        }
        message += " The checks below ran with region " + right + ".";
        add("region", Verdict::fail, std::move(message));
        config_.region = right;
        client_ = std::make_unique<s3::Client>(config_, pool_);
        continue;
      }
      if (error.code == "NoSuchBucket") {
        add("credentials", Verdict::ok, "The server accepted the access key and its signature.");
        add("bucket", Verdict::fail, answer.explanation);
        co_return false;
      }
      if (error.code == "AccessDenied") {
        add("credentials", Verdict::ok,
            "The server knows the access key and accepted its signature (it refused the listing "
            "for want of permission).");
        add("bucket", Verdict::warn,
            "Listing bucket \"" + config_.bucket +
                "\" was refused, so whether it exists and "
                "belongs to this key's account is unknown; if every check below fails too, check "
                "the bucket name.");
        co_return true;
      }
      add("bucket", Verdict::fail, "Listing the bucket failed: " + answer.explanation);
      co_return false;
    }
  }

  // Reached once a signed request was accepted: a wrong region would have been refused, so
  // this only adds what the bucket says about itself.
  awaitable<void> check_region() {
    Probe location = request("GetBucketLocation", "GET");
    location.query = {{"location", ""}};
    ProbeAnswer answer = co_await client_->probe(location);
    std::string message = "Requests signed for region " + config_.region + " are accepted";
    if (answer.answered && !answer.error) {
      pugi::xml_document document;
      document.load_buffer(answer.body.data(), answer.body.size());
      std::string reported = document.child_value("LocationConstraint");
      if (reported.empty()) reported = "us-east-1";  // how S3 names its first region
      if (reported != config_.region) {
        message += " (the bucket reports location " + reported +
                   "; this server does not hold "
                   "the signature's region against it)";
      }
    }
    add("region", Verdict::ok, message + ".");
  }

  awaitable<void> check_versioning() {
    Probe versioning = request("GetBucketVersioning", "GET");
    versioning.query = {{"versioning", ""}};
    ProbeAnswer answer = co_await client_->probe(versioning);
    const std::string what_to_do =
        " Turn versioning off, or add a lifecycle rule that expires noncurrent versions.";
    if (!answer.answered) {
      add("versioning", Verdict::warn,
          "GetBucketVersioning got no answer (" + answer.network_problem + ")." + what_to_do);
      co_return;
    }
    if (answer.error && answer.error->code == "NotImplemented") {
      add("versioning", Verdict::ok,
          "The server has no versioning API, so deleted objects are not kept." +
              std::string(host_.provider == Provider::r2 ? " Cloudflare R2 keeps no old versions."
                                                         : ""));
      co_return;
    }
    if (answer.error) {
      add("versioning", Verdict::warn,
          "Could not read the bucket's versioning status (" + answer.error->code +
              "; mxcd itself does not need s3:GetBucketVersioning). If versioning is on, media "
              "mxcd deletes stays in the bucket and is billed." +
              what_to_do + hint(Topic::versioning));
      co_return;
    }
    pugi::xml_document document;
    document.load_buffer(answer.body.data(), answer.body.size());
    const std::string status = document.child("VersioningConfiguration").child_value("Status");
    if (status == "Enabled") {
      versioned_ = true;
      add("versioning", Verdict::warn,
          "Versioning is enabled: objects mxcd deletes stay in the bucket as noncurrent "
          "versions, and are billed, until a lifecycle rule expires them." +
              what_to_do + hint(Topic::versioning));
      co_return;
    }
    if (status == "Suspended") {
      versioned_ = true;
      add("versioning", Verdict::warn,
          "Versioning is suspended: the noncurrent versions kept while it was enabled stay in "
          "the bucket, and are billed, until a lifecycle rule expires them." +
              what_to_do + hint(Topic::versioning));
      co_return;
    }
    add("versioning", Verdict::ok, "Versioning is off: what mxcd deletes is gone.");
  }

  // Payload signing: an upload's answer tells whether the server takes our x-amz-content-sha256.
  void note_payload_signing(const ProbeAnswer& upload, const std::string& operation) {
    if (finding("payload-signing") != nullptr || !upload.answered) return;
    const char* mode = config_.unsigned_payload ? "unsigned" : "signed";
    if (!upload.error) {
      add("payload-signing", Verdict::ok,
          operation + " with " +
              (config_.unsigned_payload ? "UNSIGNED-PAYLOAD" : "a signed SHA-256 of the body") +
              " was accepted (payload_signing: " + mode + ").");
    } else if (points_at_payload_signing(*upload.error)) {
      add("payload-signing", Verdict::fail,
          operation + " was refused with " + upload.error->code +
              ", which points at the payload signature (payload_signing: " + mode + "): set " +
              "payload_signing: " + (config_.unsigned_payload ? "signed" : "unsigned") +
              " in the store's configuration and check again.");
    }
  }

  // Every object permission mxcd needs, on the scratch object, which is removed at the end
  // whatever failed on the way.
  awaitable<void> check_objects() {
    const std::string& key = scratch_key_;
    // mxcd looks for each blob before uploading it: a missing object must answer 404.
    Probe head = request("HeadObject", "HEAD", key);
    head.object_headers = Probe::ObjectHeaders::using_bytes;
    ProbeAnswer head_missing = co_await client_->probe(head);

    Probe put = request("PutObject", "PUT", key);
    put.object_headers = Probe::ObjectHeaders::creating;
    put.body = std::string(kScratchBody);
    put.content_type = "text/plain";
    ProbeAnswer stored = co_await client_->probe(put);
    const bool is_stored = stored.answered && !stored.error;
    judge("put-object", stored, "PutObject", "s3:PutObject",
          "PutObject stored the scratch object " + key + ".");
    note_payload_signing(stored, "PutObject");

    Probe get = request("GetObject", "GET", key);
    get.object_headers = Probe::ObjectHeaders::using_bytes;
    ProbeAnswer got = co_await client_->probe(get);
    if (is_stored && !got.error && got.body != kScratchBody) {
      add("get-object", Verdict::fail, "GetObject answered other bytes than the scratch object's.");
    } else if (!is_stored && got.error && got.error->http_status == 404) {
      add("get-object", Verdict::ok,
          "GetObject is allowed (it answered 404 for the scratch object, which was not stored).");
    } else {
      judge("get-object", got, "GetObject", "s3:GetObject",
            "GetObject read the scratch object back.");
    }

    ProbeAnswer head_stored;
    if (is_stored) head_stored = co_await client_->probe(head);
    judge_head(head_missing, head_stored, is_stored);

    Probe list = listing(key, false);
    ProbeAnswer listed = co_await client_->probe(list);
    if (is_stored && !listed.error && listed.body.find(key) == std::string::npos) {
      add("list-objects", Verdict::warn,
          "ListObjectsV2 works but did not show the scratch object.");
    } else {
      judge("list-objects", listed, "ListObjectsV2", "s3:ListBucket",
            "ListObjectsV2 lists the keys under the store's prefix.");
    }

    co_await check_privacy(is_stored);

    Probe erase = request("DeleteObject", "DELETE", key);
    ProbeAnswer deleted = co_await client_->probe(erase);
    judge("delete-object", deleted, "DeleteObject", "s3:DeleteObject",
          is_stored ? "DeleteObject removed the scratch object." : "DeleteObject is allowed.");
    if (is_stored && (!deleted.answered || deleted.error)) {
      finding("delete-object")->message += " Remove the scratch object " + key + " by hand.";
    }
    if (is_stored && versioned_ && deleted.answered && !deleted.error) {
      std::vector<std::string> versions{stored.version_id, deleted.version_id};
      co_await remove_versions(versions);
    }
  }

  void judge_head(const ProbeAnswer& missing, const ProbeAnswer& stored, bool is_stored) {
    if (!missing.answered) {
      judge("head-object", missing, "HeadObject", "", "");
    } else if (missing.error && missing.error->http_status == 403) {
      add("head-object", Verdict::fail,
          "HeadObject of a missing object was refused (403) instead of answering 404: the key's "
          "policy must allow s3:GetObject on the objects and s3:ListBucket on the bucket, which "
          "S3 needs to tell the two apart. mxcd looks for each blob before uploading it." +
              hint(Topic::permission));
    } else if (!missing.error || missing.error->http_status != 404) {
      add("head-object", Verdict::fail,
          "HeadObject of a missing object must answer 404, but answered " +
              (missing.error ? missing.explanation : std::to_string(missing.status)));
    } else if (!is_stored) {
      add("head-object", Verdict::ok, "HeadObject answers 404 for a missing object.");
    } else {
      judge("head-object", stored, "HeadObject", "s3:GetObject",
            "HeadObject answers 404 for a missing object and 200 for the scratch object.");
    }
  }

  // Anonymous requests must be refused: media is only as private as its bucket.
  awaitable<void> check_privacy(bool is_stored) {
    Probe read = request("GetObject", "GET", scratch_key_);
    read.anonymous = true;
    ProbeAnswer anonymous_read = co_await client_->probe(read);
    if (!anonymous_read.answered) {
      add("anonymous-read", Verdict::warn,
          "The anonymous GetObject got no answer (" + anonymous_read.network_problem + ").");
    } else if (!anonymous_read.error || anonymous_read.error->http_status == 404) {
      add("anonymous-read", Verdict::fail,
          std::string(is_stored ? "An unsigned GetObject read the scratch object"
                                : "An unsigned GetObject was let through (404, not 403)") +
              ": anyone who learns an object's key can download the media. Remove public read "
              "access from the bucket's policy and ACLs." +
              hint(Topic::privacy));
    } else {
      add("anonymous-read", Verdict::ok,
          "An unsigned GetObject was refused (" + anonymous_read.error->code + ").");
    }

    Probe list = listing(config_.prefix, true);
    ProbeAnswer anonymous_list = co_await client_->probe(list);
    if (!anonymous_list.answered) {
      add("anonymous-list", Verdict::warn,
          "The anonymous ListObjectsV2 got no answer (" + anonymous_list.network_problem + ").");
    } else if (!anonymous_list.error) {
      add("anonymous-list", Verdict::fail,
          "An unsigned ListObjectsV2 listed the bucket: anyone can enumerate and then download "
          "all media. Remove public list and read access from the bucket's policy and ACLs." +
              hint(Topic::privacy));
    } else {
      add("anonymous-list", Verdict::ok,
          "An unsigned ListObjectsV2 was refused (" + anonymous_list.error->code + ").");
    }
  }

  // On a versioned bucket, deleting leaves the scratch object as a noncurrent version behind
  // a delete marker; removing those takes s3:DeleteObjectVersion, which mxcd does not use.
  awaitable<void> remove_versions(const std::vector<std::string>& version_ids) {
    bool all_removed = true;
    for (const auto& version_id : version_ids) {
      if (version_id.empty()) continue;
      Probe erase = request("DeleteObject", "DELETE", scratch_key_);
      erase.query = {{"versionId", version_id}};
      ProbeAnswer answer = co_await client_->probe(erase);
      all_removed = all_removed && answer.answered && !answer.error;
    }
    if (!all_removed) {
      finding("versioning")->message += " The scratch object " + scratch_key_ +
                                        " remains as a noncurrent version (removing versions "
                                        "needs s3:DeleteObjectVersion).";
    }
  }

  awaitable<void> check_multipart() {
    const std::string& key = scratch_key_;
    Probe create = request("CreateMultipartUpload", "POST", key);
    create.query = {{"uploads", ""}};
    create.object_headers = Probe::ObjectHeaders::creating;
    create.content_type = "text/plain";
    ProbeAnswer created = co_await client_->probe(create);
    std::string upload_id;
    if (created.answered && !created.error) {
      pugi::xml_document document;
      document.load_buffer(created.body.data(), created.body.size());
      upload_id = document.child("InitiateMultipartUploadResult").child_value("UploadId");
    }
    if (created.answered && !created.error && upload_id.empty()) {
      add("create-multipart-upload", Verdict::fail,
          "CreateMultipartUpload answered without an UploadId.");
    } else {
      judge("create-multipart-upload", created, "CreateMultipartUpload", "s3:PutObject",
            "CreateMultipartUpload started an upload.");
    }
    if (upload_id.empty()) {
      finding("create-multipart-upload")->message +=
          " UploadPart and AbortMultipartUpload were not checked.";
      co_return;
    }

    Probe part = request("UploadPart", "PUT", key);
    part.query = {{"partNumber", "1"}, {"uploadId", upload_id}};
    part.object_headers = Probe::ObjectHeaders::using_bytes;
    part.body = std::string(kScratchBody);
    ProbeAnswer uploaded = co_await client_->probe(part);
    judge("upload-part", uploaded, "UploadPart", "s3:PutObject", "UploadPart stored a part.");
    note_payload_signing(uploaded, "UploadPart");

    Probe abort = request("AbortMultipartUpload", "DELETE", key);
    abort.query = {{"uploadId", upload_id}};
    ProbeAnswer aborted = co_await client_->probe(abort);
    judge("abort-multipart-upload", aborted, "AbortMultipartUpload", "s3:AbortMultipartUpload",
          "AbortMultipartUpload removed the upload and its part.");
    if (aborted.answered && !aborted.error) co_return;
    if (aborted.answered && aborted.error->code != "AccessDenied") {
      // A server that does not do it (s3rver) is no reason to keep mxcd off it.
      S3CheckFinding* refused = finding("abort-multipart-upload");
      refused->verdict = Verdict::warn;
      refused->message +=
          " mxcd works without it: only uploads that fail or are cut off by a crash leave their "
          "parts behind, and those stay until the server or a lifecycle rule removes them.";
    }
    // Completing the upload (s3:PutObject) and deleting the object removes it too.
    bool removed = false;
    if (!uploaded.etag.empty()) removed = co_await complete_and_delete(upload_id, uploaded.etag);
    finding("abort-multipart-upload")->message +=
        removed ? " The check completed the scratch upload and deleted the object instead."
                : " The scratch upload " + upload_id + " of " + key +
                      " stays, and is billed, until a lifecycle rule aborts incomplete uploads.";
  }

  awaitable<bool> complete_and_delete(const std::string& upload_id, const std::string& etag) {
    pugi::xml_document document;
    auto part = document.append_child("CompleteMultipartUpload").append_child("Part");
    part.append_child("PartNumber").text().set(1);
    part.append_child("ETag").text().set(etag.c_str());
    std::ostringstream body;
    document.save(body, "", pugi::format_raw | pugi::format_no_declaration);
    Probe complete = request("CompleteMultipartUpload", "POST", scratch_key_);
    complete.query = {{"uploadId", upload_id}};
    complete.body = body.str();
    complete.content_type = "application/xml";
    ProbeAnswer completed = co_await client_->probe(complete);
    if (!completed.answered || completed.error) co_return false;
    Probe erase = request("DeleteObject", "DELETE", scratch_key_);
    ProbeAnswer deleted = co_await client_->probe(erase);
    if (!deleted.answered || deleted.error) co_return false;
    if (versioned_) {
      std::vector<std::string> versions{completed.version_id, deleted.version_id};
      co_await remove_versions(versions);
    }
    co_return true;
  }

  S3StoreConfig config_;  // a copy: the region changes when the server names the right one
  EndpointHost host_;
  asio::thread_pool& pool_;
  std::unique_ptr<s3::Client> client_;
  std::string scratch_key_;
  bool versioned_ = false;
  bool clock_noted_ = false;
  std::vector<S3CheckFinding> findings_;
};

S3StoreReport check_store(const StoreConfig& store, asio::thread_pool& pool) {
  S3StoreReport report{
      store.name, store.s3.bucket, store.s3.endpoint, recognise_s3_provider(store.s3.endpoint), {}};
  std::unique_ptr<BucketCheck> check;
  try {
    check = std::make_unique<BucketCheck>(store.s3, pool);
  } catch (const std::exception& e) {
    report.findings.push_back(
        {"endpoint", Verdict::fail, std::string("Cannot set up the S3 client: ") + e.what() + "."});
    return report;
  }
  asio::io_context context;
  asio::co_spawn(context, check->run(), [&](std::exception_ptr error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      check->add("endpoint", Verdict::fail, std::string("The check stopped: ") + e.what() + ".");
    }
  });
  context.run();
  report.findings = check->findings();
  return report;
}

const char* verdict_word(Verdict verdict, bool upper) {
  switch (verdict) {
    case Verdict::ok:
      return upper ? "OK" : "ok";
    case Verdict::warn:
      return upper ? "WARN" : "warn";
    case Verdict::fail:
      return upper ? "FAIL" : "fail";
  }
  return "";
}

void print_text(const std::vector<S3StoreReport>& reports, std::ostream& out) {
  std::size_t counts[3] = {0, 0, 0};
  for (const auto& report : reports) {
    out << "store " << report.store << ": bucket " << report.bucket << " at " << report.endpoint
        << "\n";
    if (!report.provider.empty()) {
      out << "  provider: " << report.provider << " (recognised from the endpoint's host name)\n";
    }
    for (const auto& f : report.findings) {
      out << fmt::format("  {:<4}  {:<23}  {}\n", verdict_word(f.verdict, true), f.check,
                         f.message);
      ++counts[static_cast<int>(f.verdict)];
    }
  }
  out << counts[2] << " FAIL, " << counts[1] << " WARN, " << counts[0] << " OK\n";
}

void print_json(const std::vector<S3StoreReport>& reports, std::ostream& out) {
  boost::json::array stores;
  for (const auto& report : reports) {
    boost::json::array checks;
    for (const auto& f : report.findings) {
      checks.push_back(boost::json::object{
          {"check", f.check}, {"status", verdict_word(f.verdict, false)}, {"message", f.message}});
    }
    boost::json::object store{
        {"store", report.store}, {"bucket", report.bucket}, {"endpoint", report.endpoint}};
    if (report.provider.empty()) {
      store["provider"] = nullptr;
    } else {
      store["provider"] = report.provider;
    }
    store["checks"] = std::move(checks);
    stores.push_back(std::move(store));
  }
  out << boost::json::serialize(stores) << "\n";
}

}  // namespace

std::string recognise_s3_provider(std::string_view endpoint) {
  return provider_name(read_endpoint_host(endpoint).provider);
}

int check_s3_stores(const Config& config, const std::string& store_name, bool json,
                    std::ostream& out, std::ostream& err) {
  std::vector<const StoreConfig*> stores;
  for (const auto& store : config.stores) {
    if (!store_name.empty() && store.name != store_name) continue;
    if (store.type == StoreConfig::Type::s3) stores.push_back(&store);
  }
  if (stores.empty() && !store_name.empty() &&
      (store_name == kLocalStoreName ||
       std::any_of(config.stores.begin(), config.stores.end(),
                   [&](const StoreConfig& s) { return s.name == store_name; }))) {
    err << "store " << store_name << " is not an S3 store\n";
    return 2;
  }
  if (stores.empty()) {
    err << (store_name.empty() ? std::string("the configuration has no S3 store")
                               : "the configuration has no store named " + store_name)
        << "\n";
    return 2;
  }
  asio::thread_pool blocking_pool(1);
  std::vector<S3StoreReport> reports;
  reports.reserve(stores.size());
  for (const auto* store : stores) reports.push_back(check_store(*store, blocking_pool));
  if (json) {
    print_json(reports, out);
  } else {
    print_text(reports, out);
  }
  for (const auto& report : reports) {
    for (const auto& f : report.findings) {
      if (f.verdict == Verdict::fail) return 1;
    }
  }
  return 0;
}

}  // namespace mxcd
