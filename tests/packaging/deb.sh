#!/usr/bin/env bash
# The .deb, built with CPack from a configured build tree (default
# build/release) and unpacked into a scratch root (nothing is installed on
# this machine):
#   - it holds the binary, the price catalog and the rank files under
#     /usr/share/sluice, the config and the secrets file under /etc/sluice
#     (conffiles; the secrets file not world-readable), the systemd unit, a
#     postinst that creates the `sluice` user, and its library dependencies;
#   - the unpacked binary finds its own catalog and rank files next to
#     itself (bin/../share/sluice), not the source tree's: a model added to
#     the unpacked catalog only is accepted, and its tokenizer counts;
#   - `systemd-analyze verify` accepts the unit (pointed at the unpacked
#     binary), and the unit has the hardening it promises.
#   - `cmake --install` to a prefix lays out the same files.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build/release}
[ -x "$BUILD/src/app/sluice" ] || { echo "deb.sh: build $BUILD first" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "deb.sh: FAIL: $*" >&2; exit 1; }

(cd "$BUILD" && cpack -G DEB -B "$TMP/out" >"$TMP/cpack.log" 2>&1) || { cat "$TMP/cpack.log" >&2; fail "cpack"; }
DEB=$(ls "$TMP"/out/sluice_*_amd64.deb 2>/dev/null | head -1)
[ -n "$DEB" ] || fail "no .deb in $TMP/out"
echo "deb.sh: built $(basename "$DEB") ($(du -k "$DEB" | cut -f1) KiB)"

ROOT="$TMP/root"
dpkg-deb -x "$DEB" "$ROOT"
for f in usr/bin/sluice usr/share/sluice/prices.yaml usr/share/sluice/tokenizers/o200k_base.tiktoken \
         usr/share/sluice/tokenizers/cl100k_base.tiktoken usr/share/sluice/tokenizers/SHA256SUMS \
         etc/sluice/sluice.yaml etc/sluice/sluice.env lib/systemd/system/sluice.service \
         usr/share/doc/sluice/README.md usr/share/doc/sluice/examples/quickstart.yaml; do
  [ -e "$ROOT/$f" ] || fail "missing /$f"
done
[ "$(stat -c %a "$ROOT/etc/sluice/sluice.env")" = 640 ] || fail "sluice.env is not mode 0640"
dpkg-deb -I "$DEB" conffiles | grep -qx /etc/sluice/sluice.yaml || fail "sluice.yaml is not a conffile"
dpkg-deb -I "$DEB" conffiles | grep -qx /etc/sluice/sluice.env || fail "sluice.env is not a conffile"
dpkg-deb -f "$DEB" Depends | grep -q adduser || fail "no dependency on adduser"
dpkg-deb -f "$DEB" Depends | grep -q libsqlite3 || fail "shared library dependencies missing"
dpkg-deb -e "$DEB" "$TMP/control"
sh -n "$TMP/control/postinst" || fail "postinst is not valid sh"
grep -q 'adduser --system' "$TMP/control/postinst" || fail "postinst does not create the user"

# The unpacked binary reads its own data: a model only its catalog has.
cat >>"$ROOT/usr/share/sluice/prices.yaml" <<'YAML'
  deb-test-model: {input: 1.00, output: 2.00, encoding: o200k_base, provider_hint: demo, source: tests/packaging/deb.sh, effective_date: 2026-12-08}
YAML
grep -q '^models:' "$ROOT/usr/share/sluice/prices.yaml" || fail "unexpected catalog layout"
cat >"$TMP/check.yaml" <<'YAML'
providers:
  demo: {kind: mock}
models:
  deb-test-model: {provider: demo}
agents:
  a: {}
YAML
env -u SLUICE_DATA_DIR "$ROOT/usr/bin/sluice" check --config "$TMP/check.yaml" >"$TMP/check.out" 2>&1 ||
  { cat "$TMP/check.out" >&2; fail "the unpacked binary did not read its own catalog"; }
env -u SLUICE_DATA_DIR "$ROOT/usr/bin/sluice" check --config "$ROOT/etc/sluice/sluice.yaml" >"$TMP/check2.out" 2>&1 ||
  { cat "$TMP/check2.out" >&2; fail "the shipped /etc/sluice/sluice.yaml does not check"; }
printf 'Hello, world' >"$TMP/text.txt"
env -u SLUICE_DATA_DIR "$ROOT/usr/bin/sluice" tokens --model deb-test-model "$TMP/text.txt" >"$TMP/tokens.out" 2>&1 ||
  { cat "$TMP/tokens.out" >&2; fail "the unpacked binary did not load its rank files"; }
grep -qw 3 "$TMP/tokens.out" || { cat "$TMP/tokens.out" >&2; fail "'Hello, world' is not 3 o200k_base tokens"; }

# The unit: systemd's own check, with ExecStart pointed at the unpacked binary.
UNIT="$TMP/sluice.service"
sed "s|/usr/bin/sluice|$ROOT/usr/bin/sluice|" "$ROOT/lib/systemd/system/sluice.service" >"$UNIT"
systemd-analyze verify --man=no "$UNIT" || fail "systemd-analyze verify"
for opt in 'User=sluice' 'NoNewPrivileges=yes' 'PrivateTmp=yes' 'ProtectSystem=strict' 'StateDirectory=sluice' \
           'ExecReload=/bin/kill -HUP $MAINPID'; do
  grep -qxF "$opt" "$UNIT" || fail "the unit lacks $opt"
done

# cmake --install lays out the same tree under a prefix.
cmake --install "$BUILD" --prefix "$TMP/prefix" >/dev/null
for f in bin/sluice share/sluice/prices.yaml share/sluice/tokenizers/o200k_base.tiktoken; do
  [ -e "$TMP/prefix/$f" ] || fail "cmake --install: missing $f"
done
echo "deb.sh: ok (contents, conffiles, dependencies, own data, systemd-analyze verify, cmake --install)"
