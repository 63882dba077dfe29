#!/usr/bin/env bash
# System packages the browser tests need: Debian's Chromium (Playwright's own
# browser download cannot reach its servers here) and a CJK font so Chinese
# renders in screenshots instead of boxes. Idempotent: when both are present
# it returns at once without touching apt.
set -euo pipefail

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
# fc-list comes with fontconfig, which chromium pulls in; without it, look for the font files.
if command -v fc-list >/dev/null 2>&1; then
    fc-list :lang=zh | grep -qi "noto.*cjk" || need+=(fonts-noto-cjk)
else
    ls /usr/share/fonts/opentype/noto/NotoSansCJK* >/dev/null 2>&1 || need+=(fonts-noto-cjk)
fi

if [ ${#need[@]} -eq 0 ]; then
    echo "system-deps: chromium and fonts-noto-cjk already installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "system-deps: need root (or sudo) to install: ${need[*]}" >&2
    exit 1
fi

echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
