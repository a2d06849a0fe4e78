#pragma once
/// @file
/// @brief The words the mock provider generates (generator.cpp) and whose
/// exact token costs exact.cpp tabulates per encoding.

#include <array>
#include <string_view>

namespace sluice::mock {

inline constexpr std::array<std::string_view, 62> kWords = {"lorem",      "ipsum",        "dolor",
                                                            "sit",        "amet",         "consectetur",
                                                            "adipiscing", "elit",         "sed",
                                                            "do",         "eiusmod",      "tempor",
                                                            "incididunt", "ut",           "labore",
                                                            "et",         "dolore",       "magna",
                                                            "aliqua",     "enim",         "ad",
                                                            "minim",      "veniam",       "quis",
                                                            "nostrud",    "exercitation", "ullamco",
                                                            "laboris",    "nisi",         "aliquip",
                                                            "ex",         "ea",           "commodo",
                                                            "consequat",  "duis",         "aute",
                                                            "irure",      "in",           "reprehenderit",
                                                            "voluptate",  "velit",        "esse",
                                                            "cillum",     "fugiat",       "nulla",
                                                            "pariatur",   "excepteur",    "sint",
                                                            "occaecat",   "cupidatat",    "non",
                                                            "proident",   "sunt",         "culpa",
                                                            "qui",        "officia",      "deserunt",
                                                            "mollit",     "anim",         "id",
                                                            "est",        "laborum"};

}  // namespace sluice::mock
