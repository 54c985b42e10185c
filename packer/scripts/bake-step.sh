#!/bin/sh
# The bake step of a Packer build, shared by packer/aws and packer/local:
# refuses a config that would bake one box's identity into an image many boxes
# boot from, then runs `slothbox-agent bake`. With a control-plane token for
# this build (SLOTHBOX_BAKE_TOKEN_FILE, a file the build provides and removes
# afterwards) the bake reports under SLOTHBOX_BAKE_BOX_ID; without one it
# reports nothing. A failed bake fails the build with the agent's own exit code.
#
#   bake-step.sh AGENT SPEC CONFIG
set -eu
[ $# -eq 3 ] || { echo "usage: bake-step.sh AGENT SPEC CONFIG" >&2; exit 2; }
agent=$1; spec=$2; config=$3
# A core dump of the agent would hold the registry secrets it read, on the disk the image is made from.
ulimit -c 0

if grep -q '"boxId"' "$config"; then
  echo "bake-step: $config sets boxId, but a baked image serves many boxes: each box gets its boxId at first boot (/etc/slothbox/box.env); remove it" >&2
  exit 2
fi
token=${SLOTHBOX_BAKE_TOKEN_FILE:-}
if [ -n "$token" ] && [ -s "$token" ]; then
  echo "bake-step: reporting this bake as box ${SLOTHBOX_BAKE_BOX_ID:-packer-bake}"
  rc=0
  env SLOTHBOX_CONTROL_PLANE_TOKEN_FILE="$token" SLOTHBOX_BOX_ID="${SLOTHBOX_BAKE_BOX_ID:-packer-bake}" "$agent" bake --spec "$spec" --config "$config" || rc=$?
  # Events the control plane did not take during the build stay behind in the outbox;
  # the image must not carry them: every box booted from it would send them as its own.
  state=${SLOTHBOX_STATE_DIR:-$(sed -n 's/.*"stateDir"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$config" | head -n 1)}
  outbox=${state:-/var/lib/slothbox}/outbox
  left=$(find "$outbox" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l)
  if [ "$left" -gt 0 ]; then
    echo "bake-step: $left event(s) of this bake were not delivered during the build; removed from the image, which boxes boot from" >&2
  fi
  rm -rf "$outbox"
  exit "$rc"
fi
echo "bake-step: no control-plane token for this build: the bake reports nothing (--no-report)"
exec "$agent" bake --spec "$spec" --config "$config" --no-report
