#!/usr/bin/env bash
# The tokenizer's differential test: src/tokenizer against OpenAI's tiktoken
# (npm `tiktoken`, the WASM build of its Rust core), both encodings, on a
# corpus of >10 MB (corpus.mjs says what is in it).
#
#   bash tools/tokenizers/differential.sh PATH/TO/sluice_tokenizer_diff OUT_DIR
#
# ctest runs it (label `tokenizer`, test `tokenizer_differential`), so
# scripts/test.sh does on every clean clone. ~30 s.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$1"
out="$2"
if [ ! -d "$here/node_modules/tiktoken" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
node "$here/corpus.mjs" "$out" | head -1
"$bin" "$out"
