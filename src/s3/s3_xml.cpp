#include "s3/s3_xml.hpp"

#include "s3/s3_error.hpp"

#include <pugixml.hpp>

#include <cstdlib>
#include <sstream>

namespace mxcd::s3::xml {

namespace {

std::string text_of(const pugi::xml_document& document) {
  std::ostringstream out;
  document.save(out, "", pugi::format_raw | pugi::format_no_declaration);
  return out.str();
}

// Whether it parsed or not: an unparsable answer reads as an empty document.
pugi::xml_document parsed(std::string_view body) {
  pugi::xml_document document;
  document.load_buffer(body.data(), body.size());
  return document;
}

}  // namespace

std::string complete_multipart_upload(const std::vector<std::string>& etags) {
  pugi::xml_document document;
  auto root = document.append_child("CompleteMultipartUpload");
  for (std::size_t i = 0; i < etags.size(); ++i) {
    auto part = root.append_child("Part");
    part.append_child("PartNumber").text().set(static_cast<unsigned>(i + 1));
    part.append_child("ETag").text().set(etags[i].c_str());
  }
  return text_of(document);
}

std::string delete_objects(const std::vector<std::string>& keys) {
  pugi::xml_document document;
  auto root = document.append_child("Delete");
  root.append_child("Quiet").text().set("true");
  for (const auto& key : keys) {
    root.append_child("Object").append_child("Key").text().set(key.c_str());
  }
  return text_of(document);
}

std::string upload_id(std::string_view body) {
  return parsed(body).child("InitiateMultipartUploadResult").child_value("UploadId");
}

bool is_error(std::string_view body) {
  pugi::xml_document document;
  return document.load_buffer(body.data(), body.size()) && document.child("Error");
}

std::vector<DeleteError> delete_errors(std::string_view body) {
  auto document = parsed(body);
  std::vector<DeleteError> errors;
  for (auto error : document.child("DeleteResult").children("Error")) {
    errors.push_back(
        {error.child_value("Key"), error.child_value("Code"), error.child_value("Message")});
  }
  return errors;
}

ListPage list_page(std::string_view body) {
  auto document = parsed(body);
  auto result = document.child("ListBucketResult");
  ListPage page;
  for (auto item : result.children("Contents")) {
    page.objects.push_back(
        {item.child_value("Key"), std::strtoull(item.child_value("Size"), nullptr, 10)});
  }
  if (std::string_view(result.child_value("IsTruncated")) == "true") {
    page.next_continuation_token = result.child_value("NextContinuationToken");
  }
  return page;
}

MultipartUploadsPage multipart_uploads_page(std::string_view body) {
  auto document = parsed(body);
  auto result = document.child("ListMultipartUploadsResult");
  MultipartUploadsPage page;
  for (auto u : result.children("Upload")) {
    page.uploads.push_back({u.child_value("Key"), u.child_value("UploadId"),
                            parse_iso8601(u.child_value("Initiated"))
                                .value_or(std::chrono::system_clock::time_point{})});
  }
  page.truncated = std::string_view(result.child_value("IsTruncated")) == "true";
  page.next_key_marker = result.child_value("NextKeyMarker");
  page.next_upload_id_marker = result.child_value("NextUploadIdMarker");
  return page;
}

}  // namespace mxcd::s3::xml
