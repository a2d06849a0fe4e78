#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build, and run the
# gateway on examples/quickstart.yaml with the built-in offline provider.
# Prints a virtual key plus a curl line and an OpenAI SDK snippet that work
# against it. State (sluice.db), the ledger (sluice-ledger.db) and its JSON-lines
# mirror (sluice-usage.jsonl) go to the current directory.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/build-release.sh --target sluice  # profile-guided: builds, trains on loopback, rebuilds
BIN=build/release/src/app/sluice
CONFIG=examples/quickstart.yaml

"$BIN" check --config "$CONFIG"
KEY=$("$BIN" keys create --config "$CONFIG" --agent drafter 2>/dev/null)
cat <<MSG

Gateway starting on http://127.0.0.1:4000 (Ctrl-C stops it). A key for agent 'drafter':

  export SLUICE_KEY=$KEY

Try it with curl:

  curl http://127.0.0.1:4000/v1/chat/completions -H "Authorization: Bearer \$SLUICE_KEY" \\
    -H 'content-type: application/json' \\
    -d '{"model":"gpt-4.1","messages":[{"role":"user","content":"Draft a reply to a refund request"}],"max_tokens":60}'

or with the OpenAI SDK (node, from tests/e2e where the SDK is installed):

  cd tests/e2e && node --input-type=module -e '
    import OpenAI from "openai";
    const client = new OpenAI({ baseURL: "http://127.0.0.1:4000/v1", apiKey: process.env.SLUICE_KEY });
    const r = await client.chat.completions.create({ model: "gpt-4.1", messages: [{ role: "user", content: "hi" }], max_tokens: 20 });
    console.log(r.choices[0].message.content, r.usage);'

Every call is recorded in the ledger sluice-ledger.db (tokens, cost in micro-USD, latency,
every attempt) and mirrored as JSON lines in sluice-usage.jsonl. See what was spent, by agent
and model (another terminal, in this directory):

  $BIN report --config $CONFIG --by agent,model

and what moving the drafter's model would save:

  $BIN roi --config $CONFIG --map gpt-4.1=gpt-4.1-mini --explain

MSG
exec "$BIN" serve --config "$CONFIG"
