#!/usr/bin/env bash
# Checks, without a Docker engine or registry, that the Dockerfiles build the
# proxy (Dockerfile), broker (deploy/broker.Dockerfile) and bridge
# (deploy/bridge.Dockerfile) images and that each image starts: Debian's
# podman builds them (chroot isolation, private storage) from a local
# builder image, then runs "-version" and the default command in each.
# IMAGES="proxy broker bridge" (the default) chooses which.
#
# Builder image (BUILDER=...):
#   scratch (default)  FROM-scratch image holding this host's Go toolchain,
#                      a static busybox for /bin/sh, and CA certificates;
#                      made in seconds, cached in the private store.
#   debian             debootstrap --variant=minbase bookworm plus the host
#                      Go toolchain: closer to golang:1.26-bookworm, but the
#                      debootstrap alone takes about two minutes.
# The build context is a copy of the tree with "go mod vendor" applied, so
# the build itself needs no network (the builder image sets GOPROXY=off).
# Before building, the Dockerfile is linted with BuildKit's own rules
# (LINT=0 skips it; the linter is fetched once through the Go module proxy).
#
# Environment: WORK (default /tmp/snowfall-container) holds the store, the
# Go build cache and the logs (keep it between CI runs: a first build
# compiles everything, later ones take seconds); KEEP=1 keeps the built
# image; VERSION is stamped into the binary.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/snowfall-container}
BUILDER=${BUILDER:-scratch}
VERSION=${VERSION:-container-check}
IMAGES=${IMAGES:-proxy broker bridge}
goversion=$(go env GOVERSION)
builder_image=localhost/snowfall-go-builder:${goversion#go}-$BUILDER-offline

step_start=0
t0=$(date +%s)
step() { step_start=$(date +%s); echo "== $*"; }
done_step() { echo "   ($(( $(date +%s) - step_start )) s)"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

need=()
for p in podman buildah runc busybox-static; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
[ "$BUILDER" = debian ] && { dpkg-query -W -f='${Status}' debootstrap 2>/dev/null | grep -q 'install ok installed' || need+=(debootstrap); }
if [ ${#need[@]} -gt 0 ]; then
  step "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  done_step
fi

mkdir -p "$WORK"
# Private storage and a configuration that works on this kind of host:
# runc, cgroupfs, file events, and limits below the host's hard limits.
cat > "$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$WORK/containers.conf
pod() {
  podman --root "$WORK/storage" --runroot "$WORK/run" --storage-driver vfs "$@"
}

# Per image: its Dockerfile and program.
dockerfile() { case $1 in proxy) echo Dockerfile ;; *) echo "deploy/$1.Dockerfile" ;; esac; }
program() { case $1 in bridge) echo snowfall-server ;; *) echo "snowfall-$1" ;; esac; }
image_of() { echo "localhost/snowfall-$1:check"; }
container_of() { echo "snowfall-$1-check-$$"; }

cleanup() {
  for i in $IMAGES; do
    pod rm -f "$(container_of "$i")" >/dev/null 2>&1 || true
    [ "${KEEP:-0}" = 1 ] || pod rmi -f "$(image_of "$i")" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK/ctx" "$WORK/rootfs"
}
trap cleanup EXIT

if [ "${LINT:-1}" = 1 ]; then
  step "linting the Dockerfile with BuildKit's rules"
  # A small linter on BuildKit's Dockerfile parser and lint rules (what
  # "docker build --check" applies), in a module of its own under $WORK so
  # that the project's go.mod stays as it is. Built once (module proxy),
  # then offline.
  lintdir=$WORK/dflint
  if [ ! -x "$lintdir/dflint" ]; then
    mkdir -p "$lintdir"
    cat > "$lintdir/main.go" <<'GO'
// Command dflint reports BuildKit's lint warnings for a Dockerfile.
package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func main() {
	src, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		fmt.Fprintln(os.Stderr, "parse:", err)
		os.Exit(1)
	}
	warnings := 0
	for _, w := range res.Warnings {
		warnings++
		fmt.Printf("%s: %s\n", os.Args[1], w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		warnings++
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		fmt.Printf("%s:%d: %s: %s\n", os.Args[1], line, rule, msg)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		fmt.Fprintln(os.Stderr, "instructions:", err)
		os.Exit(1)
	}
	fmt.Printf("%d stages, %d warnings\n", len(stages), warnings)
	if warnings > 0 {
		os.Exit(1)
	}
}
GO
    (cd "$lintdir" && rm -f go.mod go.sum && go mod init dflint >/dev/null 2>&1 &&
      GOFLAGS=-mod=mod go get github.com/moby/buildkit@v0.23.2 >/dev/null 2>&1 &&
      GOFLAGS=-mod=mod go build -o dflint . >"$WORK/dflint.log" 2>&1) || fail "building the linter: see $WORK/dflint.log"
  fi
  for i in $IMAGES; do
    "$lintdir/dflint" "$repo/$(dockerfile "$i")" | sed 's/^/   /' || fail "$(dockerfile "$i"): lint warnings"
  done
  done_step
fi

if ! pod image exists "$builder_image"; then
  step "making builder image $builder_image"
  rootfs=$WORK/rootfs
  rm -rf "$rootfs"
  case "$BUILDER" in
    scratch)
      mkdir -p "$rootfs"/{bin,etc/ssl/certs,tmp,root,usr/local}
      cp /bin/busybox "$rootfs/bin/busybox"
      for applet in $("$rootfs/bin/busybox" --list); do
        [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
      done
      ;;
    debian)
      mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
      debootstrap --variant=minbase bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" > "$WORK/debootstrap.log" 2>&1 ||
        fail "debootstrap: see $WORK/debootstrap.log"
      mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/usr/local"
      ;;
    *) fail "BUILDER must be scratch or debian" ;;
  esac
  chmod 1777 "$rootfs/tmp"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
  cp -a "$(go env GOROOT)" "$rootfs/usr/local/go"
  tar -C "$rootfs" -c . | pod import \
    --change 'ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV HOME=/root' --change 'ENV GOTOOLCHAIN=local' --change 'ENV GOPROXY=off' \
    - "$builder_image" >/dev/null 2>&1
  rm -rf "$rootfs"
  done_step
fi

step "preparing an offline build context"
ctx=$WORK/ctx
rm -rf "$ctx"
mkdir -p "$ctx"
tar -C "$repo" --exclude=./.git --exclude=./bin --exclude=./internal/interop/artifacts --exclude='./out.*.log' -c . | tar -C "$ctx" -x
(cd "$ctx" && GOFLAGS=-mod=mod go mod vendor -e >/dev/null 2>"$WORK/vendor.log") || fail "go mod vendor: see $WORK/vendor.log"
done_step

# run_check NAME: starts the image's default command (no network) and
# checks that it stays up and says what it should.
run_check() {
  local i=$1 image name logs state puser
  image=$(image_of "$i")
  name=$(container_of "$i")
  case $i in
    proxy)  pod run -d --name "$name" --network none "$image" >/dev/null ;;
    broker) pod run -d --name "$name" --network none "$image" >/dev/null ;;
    # No tor behind it: the server starts and waits for WebSockets.
    bridge) pod run -d --name "$name" --network none "$image" >/dev/null ;;
  esac
  sleep 6
  logs=$(pod logs "$name" 2>&1 || true)
  state=$(pod inspect --format '{{.State.Status}}' "$name")
  puser=$(pod top "$name" user 2>/dev/null | tail -1 | tr -d ' ' || true)
  pod rm -f "$name" >/dev/null
  echo "$logs" | sed 's/^/   | /' | head -8
  [ "$state" = running ] || fail "$i: container state $state after 6 s"
  case $i in
    proxy)
      grep -q 'msg="Proxy starting"' <<<"$logs" || fail "no 'Proxy starting' line"
      grep -q 'broker poll failed; backing off' <<<"$logs" || fail "no back-off line without a network" ;;
    broker)
      grep -q 'msg="snowfall-broker listening"' <<<"$logs" || fail "broker: no 'listening' line"
      grep -q 'tls=-disable-tls' <<<"$logs" || fail "broker: not the default plain-HTTP mode" ;;
    bridge)
      grep -qE '^SMETHOD snowflake \S+:8080 ARGS:tls=no$' <<<"$logs" || fail "bridge: no SMETHOD line"
      grep -q '^SMETHODS DONE' <<<"$logs" || fail "bridge: no SMETHODS DONE" ;;
  esac
  echo "   process runs as user: ${puser:-?}"
  [ -z "$puser" ] || [ "$puser" = 65532 ] || [ "$puser" = snowfall ] || fail "$i: process runs as $puser"
}

mkdir -p "$WORK/gocache"
for i in $IMAGES; do
  image=$(image_of "$i")
  prog=$(program "$i")
  step "building $image from $(dockerfile "$i") (podman build --isolation chroot, builder $builder_image)"
  # No intermediate layers (vfs copies every one in full); the Go build
  # cache persists in $WORK between runs, the only thing carried over.
  pod build --isolation chroot --pull=never --layers=false \
    -v "$WORK/gocache:/root/.cache/go-build" \
    --build-arg BUILDER_IMAGE="$builder_image" --build-arg VERSION="$VERSION" \
    -t "$image" -f "$repo/$(dockerfile "$i")" "$ctx" > "$WORK/build-$i.log" 2>&1 ||
    { tail -30 "$WORK/build-$i.log"; fail "podman build (log: $WORK/build-$i.log)"; }
  done_step

  step "checking $image"
  user=$(pod image inspect --format '{{.Config.User}}' "$image")
  entry=$(pod image inspect --format '{{json .Config.Entrypoint}}' "$image")
  size=$(pod image inspect --format '{{.Size}}' "$image")
  layers=$(pod image inspect --format '{{len .RootFS.Layers}}' "$image")
  echo "   user=$user entrypoint=$entry size=$((size / 1000000)) MB layers=$layers"
  [ "$user" = "65532:65532" ] || fail "$i: image runs as '$user', want 65532:65532"
  [ "$entry" = "[\"/$prog\"]" ] || fail "$i: entrypoint $entry"
  [ "$size" -lt 40000000 ] || fail "$i: image is $size bytes; want a small final stage"
  done_step

  step "running $prog -version in $image"
  out=$(pod run --rm --network none "$image" -version 2>&1) || fail "podman run: $out"
  echo "   $out"
  [[ "$out" == *"$prog"*"$VERSION"* ]] || fail "$i: unexpected -version output"
  done_step

  step "running the default command of $image (no network)"
  run_check "$i"
  done_step
done

echo "OK: images $IMAGES build and start ($(( $(date +%s) - t0 )) s in total)"
