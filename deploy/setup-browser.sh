#!/usr/bin/env bash
# Idempotent setup of what the browser tests (test/browser/) need, run before `npm test` and by
# .ci/run: Debian's `chromium` (driven by playwright-core; nothing downloads a browser build) and
# `fonts-noto-cjk` (without it Chinese renders as boxes in the screenshots). `npm start` does not
# need either. Exits 1 with a message naming what to install when it cannot install it itself.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q "install ok installed" || missing+=(fonts-noto-cjk)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
  as_root=(sudo -n)
else
  echo "setup: ${missing[*]} missing. Install as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
command -v apt-get >/dev/null 2>&1 || {
  echo "setup: ${missing[*]} missing and apt-get is not available" >&2
  exit 1
}
echo "setup: installing the Debian packages ${missing[*]} (browser tests)"
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
[ -x /usr/bin/chromium ] || { echo "setup: chromium is still missing after apt-get install" >&2; exit 1; }
