#!/usr/bin/env bash
# Run the whole PhoneBridge test suite, installing what it needs first:
#   - Debian packages: the KDE Connect 22.12 peer, debootstrap for the 25.04 and GSConnect peers,
#     chromium for the browser tests, iproute2 for the network namespaces;
#   - the three real peers (../shared/peers/*.sh install; each is idempotent);
#   - uv and the locked Python dependencies.
# The interop tests create network namespaces, so run this as root (e.g. with sudo).
# Extra arguments go to pytest, e.g. `scripts/test.sh -k gsconnect -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shared/ (peer scripts, protocol fixtures) sits beside the repository; a clone made elsewhere
# (git clone /path/to/phonebridge /tmp/x) finds it beside the repository it was cloned from.
if [ -z "${PHONEBRIDGE_SHARED:-}" ]; then
    PHONEBRIDGE_SHARED=$(cd .. && pwd)/shared
    origin=$(git config --get remote.origin.url 2>/dev/null || true)
    if [ ! -d "$PHONEBRIDGE_SHARED/peers" ] && [ -n "$origin" ] && [ -d "$origin/../shared/peers" ]; then
        PHONEBRIDGE_SHARED=$(cd "$origin/../shared" && pwd)
    fi
fi
export PHONEBRIDGE_SHARED
[ -d "$PHONEBRIDGE_SHARED/peers" ] || echo "test.sh: no peer scripts at $PHONEBRIDGE_SHARED/peers" \
    "(put shared/ beside the repository or set PHONEBRIDGE_SHARED); interop tests will fail" >&2
export UV_PYTHON_DOWNLOADS=never
export UV_COMPILE_BYTECODE=1  # every test that spawns the daemon would recompile otherwise
peers=$PHONEBRIDGE_SHARED/peers
say() { echo "test.sh: $*" >&2; }

apt_packages=(kdeconnect dbus iproute2 openssl debootstrap chromium python3)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=()
    for p in "${apt_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if [ -d "$peers" ]; then
        KC_SKIP_APT_UPDATE=1 "$peers/kdeconnect-peer.sh" install >/dev/null 2>&1 \
            || say "kdeconnect-peer.sh install failed"
        "$peers/kdeconnect8-peer.sh" install >&2 || say "kdeconnect8-peer.sh install failed"
        "$peers/gsconnect-peer.sh" install >&2 || say "gsconnect-peer.sh install failed"
    else
        say "no peer scripts at $peers: the interop tests will be skipped (or fail under CI)"
    fi
else
    say "not root: system packages and peers are not installed; interop tests need root"
fi

if ! command -v uv >/dev/null; then
    say "installing uv"
    python3 -m pip install --quiet uv || python3 -m pip install --quiet --user uv
    export PATH="$HOME/.local/bin:$PATH"
fi
uv sync --locked --quiet
exec uv run pytest "$@"
