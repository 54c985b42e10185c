#!/bin/sh
# Installs a packaged slothbox-agent (npm run package): verifies the tarball's
# SHA-256 against its .sha256 file, refuses a package built for another
# architecture (linux-x64 or linux-arm64), unpacks Node 24 and the agent under
# /opt/slothbox-agent, links /usr/local/bin/slothbox-agent, installs the systemd
# units (the service, its preflight check, and the path unit that starts it once
# the box has its API token) and, when given, the configuration. --root installs under another root
# (the local Packer template and its tests use it).
#
#   install.sh TARBALL [--sha256 FILE] [--root DIR] [--config FILE]
set -eu

usage() { echo "usage: install.sh TARBALL [--sha256 FILE] [--root DIR] [--config FILE]" >&2; exit 2; }
[ $# -ge 1 ] || usage
tarball=$1; shift
sumfile="$tarball.sha256"; root=""; config=""
while [ $# -gt 0 ]; do
  case "$1" in
    --sha256) sumfile=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    *) usage ;;
  esac
done

[ -f "$tarball" ] || { echo "install.sh: no such package: $tarball" >&2; exit 1; }
[ -f "$sumfile" ] || { echo "install.sh: no checksum file: $sumfile" >&2; exit 1; }
want=$(cut -d' ' -f1 "$sumfile")

# The bytes verified are the bytes unpacked: the package is first copied into a
# directory only this user can write, then that copy is checked and extracted,
# so nobody can swap the file between the check and the unpacking.
private=$(mktemp -d)
trap 'rm -rf "$private"' EXIT
cp "$tarball" "$private/package.tar.gz"
have=$(sha256sum "$private/package.tar.gz" | cut -d' ' -f1)
if [ "$want" != "$have" ]; then
  echo "install.sh: checksum mismatch for $tarball: expected $want, got $have; refusing to install" >&2
  exit 1
fi
echo "install.sh: $tarball sha256 $have verified"

# Packages before linux-arm64 existed carry no ARCH file: they were all linux-x64.
case "$(uname -m)" in
  x86_64 | amd64) machine=linux-x64 ;;
  aarch64 | arm64) machine=linux-arm64 ;;
  *) machine="linux-$(uname -m)" ;;
esac
built=$(tar -xzOf "$private/package.tar.gz" --wildcards '*/ARCH' 2>/dev/null || echo linux-x64)
if [ "$built" != "$machine" ]; then
  echo "install.sh: $tarball is built for $built, but this machine is $machine (uname -m: $(uname -m)); install the $machine package instead" >&2
  exit 1
fi

dest="$root/opt/slothbox-agent"
tmp="$dest.new.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
tar -xzf "$private/package.tar.gz" -C "$tmp" --strip-components=1 --no-same-owner
"$tmp/bin/node" --version >/dev/null
rm -rf "$dest.old"
[ ! -e "$dest" ] || mv "$dest" "$dest.old"
mv "$tmp" "$dest"
rm -rf "$dest.old"

mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/etc/slothbox"
# The link names the path as the box sees it, not as this installer does (--root).
ln -sfn /opt/slothbox-agent/bin/slothbox-agent "$root/usr/local/bin/slothbox-agent"
install -m 0644 "$dest/share/slothbox-agent.service" "$root/etc/systemd/system/slothbox-agent.service"
install -m 0644 "$dest/share/slothbox-agent.path" "$root/etc/systemd/system/slothbox-agent.path"
install -m 0644 "$dest/share/slothbox-agent-preflight.service" "$root/etc/systemd/system/slothbox-agent-preflight.service"
if [ -n "$config" ]; then
  install -m 0644 "$config" "$root/etc/slothbox/agent.json"
fi
echo "install.sh: installed $("$dest/bin/slothbox-agent" --version) with Node $("$dest/bin/node" --version) in $dest"
