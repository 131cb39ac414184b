#!/usr/bin/env bash
# Builds the entrawatch container image without a Docker daemon (buildah, chroot isolation, vfs
# storage in a private directory) and smoke-tests the binary inside it.
#
# Where no base image can be pulled, the Debian 12 base is made locally once with debootstrap from
# the Debian mirror and imported as localhost/debian:bookworm-minbase; the image is then built from
# deploy/Dockerfile's `runtime-prebuilt` target with a prebuilt target/release/entrawatch (built here
# with --cargo). With --from-source the default `runtime` target compiles inside a Rust image
# (RUST_IMAGE must be pullable or already in the store).
#
# Smoke test, in a container of the new image (as its user, uid 10001):
#   entrawatch --version; a replay of the bundled demo (alerts > 0); `entrawatch validate` of the
#   image's config (with a throw-away admin token, as the config requires one);
#   `entrawatch run` on the demo until /livez and /readyz answer 200 through the
#   image's health check script, then SIGTERM and a clean exit 0. Steps whose subcommand the binary
#   does not have yet are reported as skipped.
#
# Needs root (debootstrap, vfs storage), buildah, podman (to import the base once) and debootstrap:
#   apt-get install -y --no-install-recommends buildah podman debootstrap
#
# Usage: deploy/build-image.sh [--cargo] [--from-source] [--tag IMAGE] [--save FILE] [--no-smoke]
# Environment: EW_IMAGE_WORK (storage, default ${TMPDIR:-/tmp}/entrawatch-image), DEBIAN_MIRROR,
#   RUST_IMAGE and EW_BUILD_CA_BUNDLE (with --from-source: a CA bundle for cargo behind a
#   TLS-intercepting proxy), EW_SMOKE_PORT (admin port of the smoke run, default 19898).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

TAG="localhost/entrawatch:dev"
CARGO_BUILD=0
FROM_SOURCE=0
SAVE=""
SMOKE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --cargo) CARGO_BUILD=1 ;;
    --from-source) FROM_SOURCE=1 ;;
    --tag) TAG="$2"; shift ;;
    --save) SAVE="$2"; shift ;;
    --no-smoke) SMOKE=0 ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image: unknown argument: $1 (see --help)" >&2; exit 1 ;;
  esac
  shift
done

W="${EW_IMAGE_WORK:-${TMPDIR:-/tmp}/entrawatch-image}"
BASE_IMAGE="localhost/debian:bookworm-minbase"
SMOKE_PORT="${EW_SMOKE_PORT:-19898}"
S=(--root "$W/storage" --runroot "$W/run" --storage-driver vfs)
mkdir -p "$W"

die() { echo "build-image: $*" >&2; exit 1; }
step() { printf '\n== %s (t=%ds)\n' "$*" "$SECONDS"; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and the vfs store need it)"
command -v buildah >/dev/null || die "buildah is missing: apt-get install -y --no-install-recommends buildah"

CTRS=()
cleanup() {
  local c
  for c in "${CTRS[@]:-}"; do
    [ -n "$c" ] && buildah "${S[@]}" rm "$c" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

# 1. The Debian 12 base, made once per storage directory.
step "base image $BASE_IMAGE"
if buildah "${S[@]}" inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "present in $W/storage"
else
  command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install -y --no-install-recommends debootstrap"
  command -v podman >/dev/null || die "podman is missing (imports the base): apt-get install -y --no-install-recommends podman"
  # The Debian mirror apt already uses here, unless DEBIAN_MIRROR names one.
  mirror="${DEBIAN_MIRROR:-}"
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $2 ~ /^http/ {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$mirror" ] || die "no Debian mirror found in apt's sources: set DEBIAN_MIRROR"
  rm -rf "$W/rootfs"
  debootstrap --variant=minbase bookworm "$W/rootfs" "$mirror" > "$W/debootstrap.log" 2>&1 \
    || die "debootstrap failed, see $W/debootstrap.log"
  # Trim it like the official slim image: no package cache, lists, docs, man pages or
  # translations, and dpkg told to keep them out of later installs.
  r="$W/rootfs"
  rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* \
    "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/* "$r"/var/log/*.log
  find "$r/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/locale/*' > "$r/etc/dpkg/dpkg.cfg.d/slim"
  tar -C "$r" -c . | podman "${S[@]}" import - "$BASE_IMAGE" >/dev/null
  rm -rf "$W/rootfs"
  echo "imported"
fi

# 2. The binary (runtime-prebuilt target) or nothing (runtime target compiles it).
if [ "$FROM_SOURCE" = 1 ]; then
  TARGET=runtime
  PULL=(--pull=missing --build-arg "RUST_IMAGE=${RUST_IMAGE:-docker.io/library/rust:1.90-slim-bookworm}")
  if [ -n "${EW_BUILD_CA_BUNDLE:-}" ]; then
    # cargo inside the build trusts this CA bundle too (a TLS-intercepting proxy's).
    [ -f "$EW_BUILD_CA_BUNDLE" ] || die "EW_BUILD_CA_BUNDLE: no such file: $EW_BUILD_CA_BUNDLE"
    PULL+=(--secret "id=cargo-ca,src=$EW_BUILD_CA_BUNDLE")
  fi
else
  TARGET=runtime-prebuilt
  PULL=(--pull=never)
  if [ "$CARGO_BUILD" = 1 ]; then
    step "cargo build --release --locked"
    cargo build --release --locked --bin entrawatch
  fi
  [ -x target/release/entrawatch ] || die "target/release/entrawatch is missing: pass --cargo to build it"
  newest=$(find Cargo.toml Cargo.lock src ingest/src detect/src alert/src -type f -newer target/release/entrawatch -print -quit)
  [ -z "$newest" ] || echo "build-image: warning: $newest is newer than target/release/entrawatch (pass --cargo)" >&2
fi

# 3. The image.
step "buildah bud --target $TARGET -t $TAG"
version=0.1.0
if [ "$TARGET" = runtime-prebuilt ]; then
  version=$(target/release/entrawatch --version | awk '{print $2}')
fi
build_start=$SECONDS
buildah "${S[@]}" bud --isolation chroot "${PULL[@]}" --format docker --layers \
  --ignorefile deploy/Dockerfile.dockerignore -f deploy/Dockerfile --target "$TARGET" \
  --build-arg "BASE=$BASE_IMAGE" --build-arg "VERSION=$version" -t "$TAG" .
build_secs=$((SECONDS - build_start))

# 4. Smoke test inside the image.
if [ "$SMOKE" = 1 ]; then
  step "smoke test"
  ctr=$(buildah "${S[@]}" from --pull=never "$TAG")
  CTRS+=("$ctr")
  in_image() { buildah "${S[@]}" run --isolation chroot "$ctr" -- "$@"; }
  # The demo config reads the admin API's token from the environment; any random value will do.
  smoke_token="smoke-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  # The single-quoted scripts below are expanded by bash inside the image, not here.
  # shellcheck disable=SC2016
  in_image bash -c 'echo "user: $(id -u):$(id -g)"; test "$(id -u)" = 10001'
  in_image entrawatch --version
  # shellcheck disable=SC2016
  in_image bash -c '
    set -euo pipefail
    entrawatch replay --config /usr/share/entrawatch/demo-detect.toml /usr/share/entrawatch/demo \
      --quiet --alerts /tmp/alerts.jsonl
    n=$(wc -l < /tmp/alerts.jsonl)
    echo "demo replay: $n alerts"
    test "$n" -gt 0'
  if in_image entrawatch validate --help >/dev/null 2>&1; then
    in_image env "ENTRAWATCH_ADMIN_TOKEN=$smoke_token" \
      entrawatch validate --config /etc/entrawatch/entrawatch.toml
    echo "validate: /etc/entrawatch/entrawatch.toml ok"
  else
    echo "validate: skipped (this binary has no validate subcommand)"
  fi
  if in_image entrawatch run --help >/dev/null 2>&1; then
    # chroot isolation shares the host network: the smoke run listens on a non-default port.
    # shellcheck disable=SC2016
    in_image env "ENTRAWATCH_ADMIN_PORT=$SMOKE_PORT" "ENTRAWATCH_ADMIN_TOKEN=$smoke_token" bash -c '
      set -uo pipefail
      entrawatch run --config /etc/entrawatch/entrawatch.toml > /tmp/run.log 2>&1 &
      pid=$!
      live=no; ready=no
      for _ in $(seq 1 120); do
        [ "$live" = yes ] || { entrawatch-healthcheck /livez 2>/dev/null && live=yes; }
        [ "$ready" = yes ] || { entrawatch-healthcheck /readyz 2>/dev/null && ready=yes; }
        [ "$live$ready" = yesyes ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
      done
      echo "run: /livez 200: $live, /readyz 200: $ready"
      kill -TERM "$pid" 2>/dev/null
      rc=0; wait "$pid" || rc=$?
      echo "run: exit status after SIGTERM: $rc"
      if [ "$live$ready" != yesyes ] || [ "$rc" != 0 ]; then tail -n 30 /tmp/run.log; exit 1; fi'
  else
    echo "run: skipped (this binary has no run subcommand)"
  fi
fi

# 5. Figures and optional archive.
step "done"
size=$(buildah "${S[@]}" images --format '{{.Size}}' "$TAG" | head -n 1)
echo "image $TAG: $size (uncompressed), build ${build_secs}s, total ${SECONDS}s"
if [ -n "$SAVE" ]; then
  buildah "${S[@]}" push "$TAG" "docker-archive:$SAVE:$TAG" >/dev/null
  echo "saved to $SAVE ($(du -h "$SAVE" | cut -f1)); load with: docker load -i $SAVE"
fi
