#!/usr/bin/env bash
# Fetches Debian trixie's cosign 2.5.0 unpacked, never installed: the tests sign
# images with the real cosign (test/e2e/signatures.test.ts). Debian 12 has no
# cosign; trixie's is a static Go program that runs here. The mirror is the
# machine's own, read from its apt sources. Idempotent: a second run checks one
# stamp file.
#
# Layout under $SLOTHBOX_COSIGN_DIR (default /var/cache/slothbox-dev/cosign):
#   apt/        private apt configuration, lists and cache (the machine's stay untouched)
#   root/       the package unpacked: root/usr/bin/cosign
#   .complete   the package version it was made from
set -euo pipefail
# shellcheck source=scripts/private-apt.sh
. "$(dirname "$0")/private-apt.sh"

ROOT="${SLOTHBOX_COSIGN_DIR:-/var/cache/slothbox-dev/cosign}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# Exact version: when trixie moves on, the download fails and this is the line to update.
COSIGN=cosign=2.5.0-2+b5

say() { printf 'fetch-cosign: %s\n' "$*"; }
fail() {
  printf 'fetch-cosign: %s\n' "$*" >&2
  exit 1
}

[ -f "$ROOT/.complete" ] && [ "$(cat "$ROOT/.complete")" = "$COSIGN" ] && [ -x "$ROOT/root/usr/bin/cosign" ] && exit 0

[ "$(id -u)" = 0 ] || fail "run scripts/fetch-cosign.sh as root: it writes to $ROOT"
for tool in apt-get dpkg flock; do
  command -v "$tool" >/dev/null || fail "$tool is missing; run this on Debian 12"
done
[ -f "$KEYRING" ] || fail "$KEYRING is missing; run: apt-get install -y debian-archive-keyring"

mirror=$(debian_mirror)
[ -n "$mirror" ] || fail "no Debian mirror found in /etc/apt/sources.list*; add one (a URIs: or deb line ending in /debian)"

mkdir -p "$ROOT"
exec 9>"$ROOT/.lock"
flock -w 300 9 || fail "another fetch-cosign.sh held $ROOT/.lock for 5 minutes"

APT="$ROOT/apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs"
printf 'deb [signed-by=%s] %s trixie main\n' "$KEYRING" "$mirror" >"$APT/sources.list"

deb="$APT/debs/cosign_${COSIGN#*=}_amd64.deb"
if [ ! -f "$deb" ]; then
  say "updating the private apt lists (trixie from $mirror)"
  apt_private update >"$APT/update.log" 2>&1 || fail "apt-get update of the private lists failed (see $APT/update.log)"
  say "downloading $COSIGN"
  (cd "$APT/debs" && apt_private download "$COSIGN") >"$APT/download.log" 2>&1 ||
    fail "could not download $COSIGN (see $APT/download.log); if trixie moved on, update the version in scripts/fetch-cosign.sh"
fi
rm -rf "$ROOT/root.tmp"
dpkg -x "$deb" "$ROOT/root.tmp"
"$ROOT/root.tmp/usr/bin/cosign" version >/dev/null 2>&1 || fail "the unpacked cosign does not run on this machine (try $ROOT/root.tmp/usr/bin/cosign version)"
rm -rf "$ROOT/root" && mv "$ROOT/root.tmp" "$ROOT/root"
echo "$COSIGN" >"$ROOT/.complete"
say "cosign ready in $ROOT/root/usr/bin/cosign"
