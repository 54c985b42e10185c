#!/usr/bin/env bash
# Fetches newer Docker engines (Debian trixie's 26.1 and sid's 28.5) unpacked, never
# installed, so the test stack can run against them beside the system's 20.10
# (test/stack/dockerd.ts, SLOTHBOX_TEST_ENGINE). Idempotent: a second run only
# checks two stamp files. Prints one line per action.
#
#   scripts/fetch-engines.sh        # then e.g. SLOTHBOX_TEST_ENGINE=28.5-containerd npx vitest run --project integration
#
# Layout under $SLOTHBOX_ENGINES_DIR (default /var/cache/slothbox-dev/engines):
#   apt/            private apt configuration, lists and cache (the machine's stay untouched)
#   debs/           the downloaded packages
#   <version>/root  docker.io, containerd and runc unpacked: usr/bin, usr/sbin
#   <version>/libc  trixie's libc6, the loader and libdir the patched runc uses
#   <version>/.complete  the package versions it was made from
set -euo pipefail
# shellcheck source=scripts/private-apt.sh
. "$(dirname "$0")/private-apt.sh"

ROOT="${SLOTHBOX_ENGINES_DIR:-/var/cache/slothbox-dev/engines}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# Exact versions: the mirror keeps only the current version of each suite, so when
# sid moves on a download fails and these are the lines to update.
ENGINE_26_1=(docker.io=26.1.5+dfsg1-9+deb13u1+b1 containerd=1.7.24~ds1-6+deb13u1 runc=1.1.15+ds1-2+b4)
ENGINE_28_5=(docker.io=28.5.2+dfsg4-5 containerd=2.1.9+ds1-5 runc=1.3.6+ds1-1)
# Both runc builds need glibc >= 2.38; Debian 12 has 2.36.
LIBC=libc6=2.41-12+deb13u5
PATCHELF=patchelf=0.14.3-1+b1

say() { printf 'fetch-engines: %s\n' "$*"; }
fail() {
  printf 'fetch-engines: %s\n' "$*" >&2
  exit 1
}

stamp_for() { # version packages... -> the stamp text
  local v=$1
  shift
  printf '%s %s %s\n' "$v" "$*" "$LIBC"
}

ready() { # version packages...
  local v=$1
  [ -f "$ROOT/$v/.complete" ] && [ "$(cat "$ROOT/$v/.complete")" = "$(stamp_for "$@")" ]
}

if ready 26.1 "${ENGINE_26_1[@]}" && ready 28.5 "${ENGINE_28_5[@]}"; then
  exit 0
fi

[ "$(id -u)" = 0 ] || fail "run scripts/fetch-engines.sh as root: it writes to $ROOT"
for tool in apt-get dpkg flock; do
  command -v "$tool" >/dev/null || fail "$tool is missing; run this on Debian 12 (apt-get install -y apt dpkg util-linux)"
done
[ -f "$KEYRING" ] || fail "$KEYRING is missing; run: apt-get install -y debian-archive-keyring"

mkdir -p "$ROOT"
# Two stacks may start the fetch at once: the second waits, then finds it done.
exec 9>"$ROOT/.lock"
flock -w 300 9 || fail "another fetch-engines.sh held $ROOT/.lock for 5 minutes; wait for it or remove the lock's holder"

APT="$ROOT/apt"
DEBS="$ROOT/debs"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$DEBS"
MIRROR=$(debian_mirror)
[ -n "$MIRROR" ] || fail "no Debian mirror found in /etc/apt/sources.list*; add one (a URIs: or deb line ending in /debian)"
# bookworm is listed only for patchelf, so the fetch does not depend on the machine's own apt lists.
cat >"$APT/sources.list" <<EOF
deb [signed-by=$KEYRING] $MIRROR trixie main
deb [signed-by=$KEYRING] $MIRROR sid main
deb [signed-by=$KEYRING] $MIRROR bookworm main
EOF

deb_file() { # name=version -> the file apt-get download writes (epoch ':' as %3a)
  local name=${1%%=*} version=${1#*=}
  printf '%s/%s_%s_amd64.deb' "$DEBS" "$name" "${version//:/%3a}"
}

updated=no
download() { # name=version...
  local missing=() p
  for p in "$@"; do [ -f "$(deb_file "$p")" ] || missing+=("$p"); done
  [ "${#missing[@]}" -gt 0 ] || return 0
  if [ "$updated" = no ]; then
    say "updating the private apt lists (trixie, sid, bookworm)"
    apt_private update >"$APT/update.log" 2>&1 ||
      fail "apt-get update of the private lists failed (see $APT/update.log); check that $MIRROR is reachable, then run scripts/fetch-engines.sh again"
    updated=yes
  fi
  # One package per call: apt-get download drops a second version of the same name.
  for p in "${missing[@]}"; do
    say "downloading $p"
    (cd "$DEBS" && apt_private download "$p") >"$APT/download.log" 2>&1 ||
      fail "could not download $p from $MIRROR (see $APT/download.log); if the suite moved on, update the versions in scripts/fetch-engines.sh and run it again"
  done
}

PATCHELF_DIR="$ROOT/patchelf"
if [ ! -x "$PATCHELF_DIR/usr/bin/patchelf" ]; then
  download "$PATCHELF"
  say "unpacking $PATCHELF"
  rm -rf "$PATCHELF_DIR" && dpkg -x "$(deb_file "$PATCHELF")" "$PATCHELF_DIR"
fi

build() { # version packages...
  local v=$1
  shift
  ready "$v" "$@" && return 0
  download "$@" "$LIBC"
  local tmp="$ROOT/.$v.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp/root" "$tmp/libc"
  local p
  for p in "$@"; do
    say "unpacking $p into $ROOT/$v"
    dpkg -x "$(deb_file "$p")" "$tmp/root"
  done
  dpkg -x "$(deb_file "$LIBC")" "$tmp/libc"
  # runc re-executes itself (/proc/self/exe), so LD_LIBRARY_PATH would not follow it:
  # the loader and library path go into the binary. The final paths, not $tmp's.
  local libdir="$ROOT/$v/libc/usr/lib/x86_64-linux-gnu"
  say "patching $v's runc to use trixie's glibc"
  "$PATCHELF_DIR/usr/bin/patchelf" --set-interpreter "$libdir/ld-linux-x86-64.so.2" \
    --set-rpath "$libdir:/lib/x86_64-linux-gnu" "$tmp/root/usr/sbin/runc" ||
    fail "patchelf could not patch $v's runc; remove $ROOT/$v and run scripts/fetch-engines.sh again"
  rm -rf "${ROOT:?}/$v"
  mv "$tmp" "$ROOT/$v"
  local bin
  for bin in usr/sbin/runc usr/sbin/dockerd usr/bin/containerd; do
    if ! "$ROOT/$v/root/$bin" --version >/dev/null 2>&1; then
      rm -rf "${ROOT:?}/$v"
      fail "$v's $bin does not run on this machine (unpack it by hand and try $bin --version to see why)"
    fi
  done
  # Written last: an interrupted run leaves no stamp, and the next run starts over.
  stamp_for "$v" "$@" >"$ROOT/$v/.complete"
  say "engine $v ready in $ROOT/$v/root"
}

build 26.1 "${ENGINE_26_1[@]}"
build 28.5 "${ENGINE_28_5[@]}"
