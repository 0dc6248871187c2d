#!/usr/bin/env bash
# Verifies the systemd units (deploy/systemd/*.service and the proxy's
# proxy/snowfall-proxy.service) with systemd-analyze verify, against the
# programs in bin/ (make build) and the man pages in doc/, and prints each
# unit's exposure score from systemd-analyze security. Fails on any
# warning from verify.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze is missing" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/units" "$tmp/man/man1"
for p in "$repo"/doc/*.1; do ln -s "$p" "$tmp/man/man1/"; done
status=0
for u in "$repo"/deploy/systemd/*.service "$repo/proxy/snowfall-proxy.service"; do
  name=$(basename "$u")
  prog=${name%.service}
  [ -x "$repo/bin/$prog" ] || { echo "FAIL: bin/$prog missing (make build)" >&2; exit 1; }
  # The units name /usr/local/bin; point them at the fresh build.
  sed "s|/usr/local/bin/$prog|$repo/bin/$prog|g" "$u" > "$tmp/units/$name"
  out=$(MANPATH=$tmp/man systemd-analyze verify "$tmp/units/$name" 2>&1 || true)
  if [ -n "$out" ]; then
    echo "FAIL: $name:"; echo "$out" | sed 's/^/   /'; status=1
  else
    score=$(systemd-analyze security --offline=yes "$tmp/units/$name" 2>/dev/null | awk '/Overall exposure level/ {print $(NF-2), $(NF-1)}' || true)
    echo "ok: $name (exposure ${score:-?})"
  fi
done
exit $status
