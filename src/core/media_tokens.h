#pragma once
/// @file
/// @brief Upper bounds on the prompt tokens of audio and file content parts.
///
/// A chat message may carry `input_audio` ({data: base64, format}) and
/// `file` ({file_data: base64 data URL, filename} or {file_id}) parts. The
/// provider turns them into tokens Sluice cannot count without decoding the
/// media, so a reservation bounds them by the size of what was sent, the way
/// image parts are bounded by the largest tile count:
///
///  * Audio: one token per 2 base64 characters of `data` (2/3 token per
///    byte of audio). Audio models bill audio by its duration, in the order
///    of ten tokens a second, and even an 8 kbit/s MP3 carries 1,333 base64
///    characters a second, so the bound is tens of times the real count.
///  * A file: one token per base64 character of `file_data` (4/3 tokens per
///    byte of file) plus one high-detail image. Providers put the text
///    extracted from a PDF and an image of each page in the context; text
///    compressed in a PDF stream expands about 3-4x and reads about 4
///    characters a token, so the extracted text stays under a token per
///    compressed byte; the added image covers a document of one page whose
///    size is all text. Page images of long documents are bounded by their
///    share of the bytes: a page image (at most 1,445 tokens) needs more
///    than a kilobyte of base64 under this rule, which real PDF pages (fonts,
///    content streams, object tables) take.
///  * A file given only by `file_id` has no size Sluice can see: the request
///    is refused with a 400 that says to send the file inline (the proto layer
///    does this), since no finite bound would be honest.
///
/// Thread-safety: pure functions.

#include <cstdint>

#include "core/token_estimate.h"

namespace sluice::core {

/// Bound for an `input_audio` part whose `data` has `base64_chars` characters.
[[nodiscard]] constexpr int64_t audioPartTokens(int64_t base64_chars) {
  return base64_chars <= 0 ? 1 : base64_chars / 2 + 1;
}

/// Bound for a `file` part whose `file_data` has `data_chars` characters.
[[nodiscard]] constexpr int64_t filePartTokens(int64_t data_chars) {
  return (data_chars <= 0 ? 0 : data_chars) + kImageHighTokens;
}

}  // namespace sluice::core
