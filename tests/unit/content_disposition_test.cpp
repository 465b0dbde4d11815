#include "core/content_disposition.hpp"

#include <gtest/gtest.h>

namespace mxcd {
namespace {

TEST(InlineSafeTypes, MatchCaseInsensitivelyIgnoringParameters) {
  for (const char* type :
       {"image/png", "IMAGE/PNG", "Text/Plain; charset=utf-8", "text/plain;charset=utf-8",
        " text/csv ", "video/mp4", "audio/x-flac", "application/ld+json", "image/avif"}) {
    EXPECT_TRUE(is_inline_safe_content_type(type)) << type;
  }
  for (const char* type :
       {"image/svg", "image/svg+xml", "text/html", "application/javascript",
        "application/octet-stream", "", "image/pngx", "text/plain2", "application/pdf"}) {
    EXPECT_FALSE(is_inline_safe_content_type(type)) << type;
  }
}

TEST(ServedContentType, BareTextTypesAreServedAsUtf8) {
  EXPECT_EQ(served_content_type("text/plain"), "text/plain; charset=UTF-8");
  EXPECT_EQ(served_content_type("Text/HTML"), "Text/HTML; charset=UTF-8");
  EXPECT_EQ(served_content_type("application/json"), "application/json; charset=UTF-8");
  EXPECT_EQ(served_content_type("image/svg+xml"), "image/svg+xml; charset=UTF-8");
}

TEST(ServedContentType, EverythingElseIsVerbatim) {
  for (const char* stored :
       {"text/plain; charset=ISO-8859-1", "text/plain;charset=utf-8", "img/png", "image/png",
        "text/markdown", "application/octet-stream", "", "text/plain "}) {
    EXPECT_EQ(served_content_type(stored), stored);
  }
}

TEST(ContentDisposition, WithoutFilename) {
  EXPECT_EQ(content_disposition("image/png", std::nullopt), "inline");
  EXPECT_EQ(content_disposition("text/html", std::nullopt), "attachment");
  EXPECT_EQ(content_disposition("image/png", std::string()), "inline");
}

TEST(ContentDisposition, TokenFilename) {
  EXPECT_EQ(content_disposition("image/png", std::string("file.png")), "inline; filename=file.png");
  EXPECT_EQ(content_disposition("application/zip", std::string("a-b_c.zip")),
            "attachment; filename=a-b_c.zip");
}

TEST(ContentDisposition, QuotedStringForSeparators) {
  EXPECT_EQ(content_disposition("text/plain", std::string("name with spaces")),
            "inline; filename=\"name with spaces\"");
  EXPECT_EQ(content_disposition("text/plain", std::string("name;with;semicolons")),
            "inline; filename=\"name;with;semicolons\"");
  EXPECT_EQ(content_disposition("text/plain", std::string("a\"b\\c")),
            "inline; filename=\"a\\\"b\\\\c\"");
}

TEST(ContentDisposition, Rfc5987ForNonAscii) {
  EXPECT_EQ(content_disposition("text/plain", std::string("🐔")),
            "inline; filename*=utf-8''%F0%9F%90%94");
  EXPECT_EQ(content_disposition("text/plain", std::string("☕")),
            "inline; filename*=utf-8''%E2%98%95");
  EXPECT_EQ(content_disposition("text/plain", std::string("☕ cup.txt")),
            "inline; filename*=utf-8''%E2%98%95%20cup.txt");
}

TEST(ContentDisposition, BidiControlsAreLeftOut) {
  // "invoice\u202Egpj.exe" displays as "invoiceexe.jpg".
  EXPECT_EQ(content_disposition("application/octet-stream", "invoice\u202Egpj.exe"),
            "attachment; filename=invoicegpj.exe");
  for (const char* control :
       {"\u202A", "\u202B", "\u202C", "\u202D", "\u202E", "\u2066", "\u2067", "\u2068", "\u2069"}) {
    EXPECT_EQ(content_disposition("text/plain", std::string("a") + control + "b.txt"),
              "inline; filename=ab.txt")
        << control;
  }
  // Neighbours of those ranges are ordinary characters.
  EXPECT_EQ(content_disposition("text/plain", "a\u2029b\u2065"),
            "inline; filename*=utf-8''a%E2%80%A9b%E2%81%A5");
  // Nothing but controls: no file name at all.
  EXPECT_EQ(content_disposition("text/plain", "\u202E\u2066"), "inline");
}

TEST(UploadName, ValidUtf8WithoutControls) {
  EXPECT_TRUE(is_valid_upload_name("report.pdf"));
  EXPECT_TRUE(is_valid_upload_name("🐔 and ☕"));
  EXPECT_TRUE(is_valid_upload_name(std::string(255, 'a')));
  EXPECT_FALSE(is_valid_upload_name(""));
  EXPECT_FALSE(is_valid_upload_name(std::string(256, 'a')));
  EXPECT_FALSE(is_valid_upload_name("tab\there"));
  EXPECT_FALSE(is_valid_upload_name("line\nbreak"));
  EXPECT_FALSE(is_valid_upload_name("del\x7f"));
  EXPECT_FALSE(is_valid_upload_name("c1\xc2\x85"));        // U+0085, a C1 control
  EXPECT_FALSE(is_valid_upload_name("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_upload_name("\xed\xa0\x80"));      // a UTF-16 surrogate
  EXPECT_FALSE(is_valid_upload_name("\xf0\x9f\x90"));      // truncated sequence
  EXPECT_FALSE(is_valid_upload_name("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_upload_name("\xff"));
}

}  // namespace
}  // namespace mxcd
