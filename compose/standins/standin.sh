#!/usr/bin/env bash
# standin.sh IMAGE SOURCE NAME makes IMAGE available to the Dockerfiles and
# compose stacks: an image by that name that is not a stand-in (a real one)
# is used as it is; otherwise it is pulled; where no registry answers (this
# project's test machines), a local stand-in is built FROM scratch from
# compose/standins/NAME.Dockerfile with SOURCE (this machine's binary, or
# directory) as NAME. A stand-in is rebuilt only when SOURCE changed.
set -euo pipefail
image=$1 src=$2 name=$3
here=$(cd "$(dirname "$0")" && pwd)

label() { docker image inspect -f "{{index .Config.Labels \"$1\"}}" "$image" 2>/dev/null || true; }

if docker image inspect "$image" >/dev/null 2>&1 && [ "$(label dockroute.stand-in)" != 1 ]; then
  exit 0 # a real image
fi
[ -e "$src" ] || { echo "$image: no registry image and no $src to build a stand-in from" >&2; exit 1; }
stamp=$(find "$src" -maxdepth 1 -printf '%s-%T@\n' | sort | sha256sum | cut -c1-16)
[ "$(label dockroute.stand-in.stamp)" = "$stamp" ] && exit 0
if docker pull -q "$image" >/dev/null 2>&1; then
  echo "$image: pulled"
  exit 0
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp -a "$src" "$ctx/$name"
# The official images trust the public CAs; so does a stand-in (the Go
# stand-in downloads modules from the module proxy).
cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
out=$(docker build -q --build-arg STAMP="$stamp" -t "$image" -f "$here/$name.Dockerfile" "$ctx" 2>&1) || { echo "$out" >&2; exit 1; }
echo "$image: a local stand-in (no registry answered)"
