// The XML of the S3 API, in one place: the request bodies mxcd sends and the parts of the
// answers it reads (pugixml). Parsing is lenient like the servers it talks to: an element
// that is missing reads as empty. Error documents are read by s3_error.hpp.
#pragma once

#include "s3/s3_client.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace mxcd::s3::xml {

// CompleteMultipartUpload: parts numbered from 1 in the order of etags.
std::string complete_multipart_upload(const std::vector<std::string>& etags);
// DeleteObjects in quiet mode: the answer lists only the keys that could not be deleted.
std::string delete_objects(const std::vector<std::string>& keys);

// The UploadId of an InitiateMultipartUploadResult; empty when there is none.
std::string upload_id(std::string_view body);

// Whether the body is an <Error> document (a 200 CompleteMultipartUpload may carry one).
bool is_error(std::string_view body);

struct DeleteError {
  std::string key;
  std::string code;
  std::string message;
};
// The <Error> entries of a DeleteResult.
std::vector<DeleteError> delete_errors(std::string_view body);

// A ListBucketResult (ListObjectsV2); the continuation token only when it is truncated.
ListPage list_page(std::string_view body);

struct MultipartUploadsPage {
  std::vector<MultipartUpload> uploads;
  bool truncated = false;
  std::string next_key_marker;
  std::string next_upload_id_marker;
};
// A ListMultipartUploadsResult.
MultipartUploadsPage multipart_uploads_page(std::string_view body);

}  // namespace mxcd::s3::xml
