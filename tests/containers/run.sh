#!/usr/bin/env bash
# Build every bqx image with podman and run the checks that need them: the whole sample pipeline with
# each task in its stage image (kfp.local DockerRunner), the train image run as SageMaker runs it, and
# the serve image started as SageMaker starts it. On a Debian machine, as root:
#
#     tests/containers/run.sh
#
# It installs podman, runc and debootstrap with apt when missing; uses a registry's Python base image
# when one can be pulled and otherwise builds one (debootstrap from the mirror of this machine's apt
# sources, then `podman import`); talks to podman through its Docker-compatible socket; prints image
# sizes and timings as `name: value unit` lines; and removes what it built on the way out.
# BQX_KEEP_IMAGES=1 keeps the images (and the base) for another run.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${BQX_CONTAINERS_WORK:-/var/tmp/bqx-containers}
registry=localhost/bqx
tag=${BQX_IMAGE_TAG:-ci-$$}
python_image=localhost/bqx-python:3.11-bookworm
start=$(date +%s)
say() { echo "[containers $(( $(date +%s) - start ))s] $*"; }
mkdir -p "$work"

# -- podman ---------------------------------------------------------------------------------------------
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  say "installing podman, runc and debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi
# Machines of this kind: crun fails under cgroup v1 hybrid mode (runc works), and raising rlimits is not
# permitted (so the defaults are set to what is allowed). A config of our own, not the machine's.
cat > "$work/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$work/containers.conf"

socket="$work/podman-$$.sock"
podman system service --time=0 "unix://$socket" > "$work/podman-service.log" 2>&1 &
service=$!
cleanup() {
  status=$?
  if [ "${BQX_KEEP_IMAGES:-0}" != 1 ]; then
    podman images --format '{{.Repository}}:{{.Tag}}' | grep "^$registry/.*:$tag\$" | xargs -r podman rmi -f >/dev/null 2>&1 || true
    podman image prune -f >/dev/null 2>&1 || true
  fi
  kill "$service" 2>/dev/null || true
  say "done (exit $status)"
}
trap cleanup EXIT
export DOCKER_HOST="unix://$socket"
for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done

# -- the Python base ------------------------------------------------------------------------------------
t=$(date +%s)
if podman image exists "$python_image"; then
  say "base image $python_image is here"
elif timeout 60 podman pull -q docker.io/library/python:3.11-slim-bookworm >/dev/null 2>&1; then
  python_image=docker.io/library/python:3.11-slim-bookworm
  say "pulled $python_image"
else
  # deb822 sources (Debian 12's default) or a one-line sources.list, whichever the machine has
  mirror=$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}';
              grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}'; } | grep -v security | head -1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  say "no registry base image can be pulled: debootstrap bookworm from $mirror"
  rootfs="$work/rootfs"
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" \
    > "$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; exit 1; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
         "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/info/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["python3"]' - "$python_image" >/dev/null
  rm -rf "$rootfs"
fi
echo "base image time: $(( $(date +%s) - t )) s"

# -- build ----------------------------------------------------------------------------------------------
ca=()
[ -s /etc/ssl/certs/ca-certificates.crt ] && ca=(--ca-bundle /etc/ssl/certs/ca-certificates.crt)
t=$(date +%s)
python3 -m bqx.cli images --registry "$registry" --tag "$tag" --python-image "$python_image" "${ca[@]}" \
  | tee "$work/build.log" | grep -v '^  '
echo "image build time: $(( $(date +%s) - t )) s"
sed -n 's/^image size \(.*\)\/\(bqx-[a-z]*\):.*: \(.*\) MB$/image size \2: \3 MB/p' "$work/build.log"

# -- checks in containers -------------------------------------------------------------------------------
t=$(date +%s)
BQX_IMAGE_REGISTRY=$registry BQX_IMAGE_TAG=$tag python3 -m pytest -q -p no:cacheprovider -m containers \
  tests/containers
echo "container checks time: $(( $(date +%s) - t )) s"
echo "containers total time: $(( $(date +%s) - start )) s"
