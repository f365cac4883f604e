#!/usr/bin/env bash
# `make test-sam-local`: the functions as `sam build` packs them, run by real `sam local invoke` in a Lambda-like
# container, against a moto server and the Uploadcare emulator on the Docker bridge (devkit/sam_local_check.py).
#
# The Docker engine:
#   * the machine's own, when `docker info` answers (a laptop): SAM pulls AWS's image as usual; nothing of that
#     engine is changed or stopped;
#   * else, as root with apt-get (these machines and CI): docker.io and debootstrap from Debian's packages, and a
#     PRIVATE dockerd (its own socket; data under .cache/sam-local, runtime state in a temporary folder;
#     --iptables=false --ip-forward=false --dns 127.0.0.1, so containers reach nothing but the bridge's host
#     address), with a local stand-in for AWS's runtime image built once by build-image.sh and kept by a stamp;
#     stopped, and its bridge removed, when this script ends, however it ends;
#   * else it says why it cannot run and fails, or skips with SAM_LOCAL_OPTIONAL=1.
# shellcheck disable=SC2317  # stop_private_engine and finish run from the traps
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cache=$root/.cache/sam-local
logs=$cache/logs
sam=$root/.venv-sam/bin/sam
python=$root/.venv/bin/python
mkdir -p "$cache"

now() { echo "${EPOCHREALTIME:-$(date +%s)}"; }
seconds_since() { awk -v from="$1" -v to="$(now)" 'BEGIN { printf "%6.1f", to - from }'; }
started=$(now)
phase_started=$started
timings=()
phase_done() { timings+=("$(seconds_since "$phase_started") s  $1"); phase_started=$(now); }

engine_dir=""     # the private engine's socket, exec-root and pidfile (a temporary folder)
dockerd_pid=""    # set only when this script started a dockerd
made_bridge=0     # 1 when the private engine created docker0 (removed at the end)
driver_pid=""     # devkit.sam_local_check, which stops its own servers and sam on SIGTERM

alive() { grep -qs '^State:[[:space:]]*[^Z]' "/proc/$1/status"; }  # running, and not a zombie

stop_private_engine() {
  [ -n "$dockerd_pid" ] || return 0
  local children pid
  docker image prune --force >/dev/null 2>&1 || true  # the layer images sam rebuilds on every invoke
  children=$(pgrep -P "$dockerd_pid" || true)          # its containerd
  kill -TERM "$dockerd_pid" 2>/dev/null || true
  for _ in $(seq 1 150); do
    alive "$dockerd_pid" || break
    sleep 0.2
  done
  if alive "$dockerd_pid"; then
    echo "test-sam-local: dockerd did not stop within 30 s; killing it" >&2
    kill -KILL "$dockerd_pid" 2>/dev/null || true
  fi
  wait "$dockerd_pid" 2>/dev/null || true
  for pid in $children; do kill -TERM "$pid" 2>/dev/null || true; done
  # Mounts a killed engine may leave behind (a clean stop leaves none).
  grep -E " ($engine_dir|$cache/engine)/" /proc/mounts | awk '{print $2}' | sort -r |
    while read -r mount; do umount -l "$mount" 2>/dev/null || true; done
  if [ "$made_bridge" = 1 ] && ip link show docker0 >/dev/null 2>&1; then
    ip link delete docker0 && rm -f "$cache/bridge-made"
  fi
  rm -rf "$engine_dir"
  rm -f "$cache/dockerd.pid"
  dockerd_pid=""
}

finish() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$driver_pid" ] && alive "$driver_pid"; then
    kill -TERM "$driver_pid" 2>/dev/null
    wait "$driver_pid" 2>/dev/null
    phase_done "check interrupted: sam, moto and the emulator stopped"
  fi
  if [ -n "$dockerd_pid" ]; then
    stop_private_engine
    phase_done "private Docker engine stopped, bridge removed"
  fi
  if [ ${#timings[@]} -gt 0 ]; then
    echo
    echo "test-sam-local timings:"
    printf '  %s\n' "${timings[@]}"
    echo "  $(seconds_since "$started") s  total"
  fi
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cannot() {
  echo "test-sam-local: cannot run here: $*" >&2
  if [ "${SAM_LOCAL_OPTIONAL:-0}" = 1 ]; then
    echo "test-sam-local: skipped (SAM_LOCAL_OPTIONAL=1)" >&2
    exit 0
  fi
  exit 1
}

for tool in "$sam" "$python"; do
  [ -x "$tool" ] || { echo "test-sam-local: $tool is missing: run it as \`make test-sam-local\`" >&2; exit 1; }
done

case "$(uname -m)" in
  x86_64 | amd64) architecture=x86_64 ;;
  aarch64 | arm64) architecture=arm64 ;;
  *) cannot "no Lambda architecture matches this machine's $(uname -m)" ;;
esac
image=public.ecr.aws/lambda/python:3.13-$architecture

# One run at a time on this machine (any clone): the bridge is the machine's, the engine data and build folder the clone's.
if command -v flock >/dev/null 2>&1; then
  exec 9>"${TMPDIR:-/tmp}/uploadcare-s3-copy-sam-local.lock"
  flock -n 9 || { echo "test-sam-local: waiting for another run to finish"; flock 9; }
fi

# ---------------------------------------------------------------- a Docker engine

start_private_engine() {
  local missing=() stale
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "test-sam-local: installing ${missing[*]} with apt-get"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
      >"$cache/apt.log" 2>&1; then
      tail -n 5 "$cache/apt.log" >&2
      cannot "apt-get could not install ${missing[*]} (is Debian's package mirror reachable?); log: $cache/apt.log"
    fi
  fi
  # A private engine left running by a run that was killed (SIGKILL): stop it before starting another.
  stale=$(cat "$cache/dockerd.pid" 2>/dev/null || true)
  if [ -n "$stale" ] && tr '\0' ' ' <"/proc/$stale/cmdline" 2>/dev/null | grep -q -- "--data-root $cache/engine"; then
    echo "test-sam-local: stopping the private engine a killed run left (pid $stale)"
    kill -TERM "$stale" 2>/dev/null || true
    for _ in $(seq 1 150); do [ -e "/proc/$stale" ] || break; sleep 0.2; done
  fi
  if ! ip link show docker0 >/dev/null 2>&1; then
    made_bridge=1
  elif [ -e "$cache/bridge-made" ]; then
    made_bridge=1  # made by a run that was killed
  fi
  engine_dir=$(mktemp -d "${TMPDIR:-/tmp}/sam-local-engine.XXXXXX")
  setsid dockerd \
    --data-root "$cache/engine" --exec-root "$engine_dir/exec" --pidfile "$engine_dir/dockerd.pid" \
    -H "unix://$engine_dir/docker.sock" \
    --iptables=false --ip-forward=false --ip-masq=false --dns 127.0.0.1 --log-level warn \
    </dev/null >"$cache/dockerd.log" 2>&1 &
  dockerd_pid=$!
  echo "$dockerd_pid" >"$cache/dockerd.pid"
  [ "$made_bridge" = 1 ] && touch "$cache/bridge-made"
  export DOCKER_HOST=unix://$engine_dir/docker.sock
  for _ in $(seq 1 150); do
    docker info >/dev/null 2>&1 && return 0
    if ! alive "$dockerd_pid"; then
      tail -n 5 "$cache/dockerd.log" >&2
      wait "$dockerd_pid" 2>/dev/null || true
      dockerd_pid=""
      cannot "the private dockerd exited at start (no overlay filesystem or cgroups here?); log: $cache/dockerd.log"
    fi
    sleep 0.2
  done
  cannot "the private dockerd did not answer within 30 s; log: $cache/dockerd.log"
}

pull=()
if command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; then
  echo "test-sam-local: using this machine's Docker engine ($(docker info -f '{{.Name}} {{.ServerVersion}}' 2>/dev/null))"
  docker image inspect "$image" >/dev/null 2>&1 || pull=(--pull)  # sam pulls AWS's image on first use
  phase_done "Docker engine: this machine's"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test-sam-local: no Docker engine answers; starting a private one"
  start_private_engine
  phase_done "private Docker engine ready (docker.io $(dockerd --version | awk '{print $3}' | tr -d ,))"
  python313=$(scripts/find-python.sh 2>/dev/null) || cannot "no Python 3.13 to put in the runtime image"
  stamp=$( (cat scripts/sam-local/build-image.sh; echo "$python313"; "$python313" -VV) | sha256sum | cut -c1-16)
  if [ "$(cat "$cache/image-$architecture.stamp" 2>/dev/null)" = "$stamp" ] && docker image inspect "$image" >/dev/null 2>&1; then
    echo "test-sam-local: runtime image $image is cached"
  else
    echo "test-sam-local: building the runtime image $image (once; kept in $cache/engine)"
    # sam reuses an image derived from the base without looking at the base: drop those too.
    docker image rm --force "$image" "public.ecr.aws/lambda/python:3.13-rapid-$architecture" >/dev/null 2>&1 || true
    docker image ls --quiet samcli/lambda-python | sort -u | xargs -r docker image rm --force >/dev/null 2>&1 || true
    rm -f "$cache/image-$architecture.stamp"
    scripts/sam-local/build-image.sh "$image" "$python313"
    echo "$stamp" >"$cache/image-$architecture.stamp"
  fi
  phase_done "runtime image $image"
else
  cannot "no Docker engine answers (\`docker info\`), and starting a private one needs root and apt-get"
fi

# The host's end of the default bridge: the one address the function containers can reach.
gateway=$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)
if [ -z "$gateway" ]; then
  bridge=$(docker network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null || true)
  gateway=$(ip -4 -o addr show dev "${bridge:-docker0}" 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')
fi
[ -n "$gateway" ] || cannot "no address found for the Docker bridge's gateway"
ip -4 -o addr show 2>/dev/null | grep -q " inet $gateway/" ||
  cannot "the Docker bridge's gateway $gateway is not an address of this machine (Docker Desktop or a remote engine?)"

# ---------------------------------------------------------------- build, then invoke

python313=$(scripts/find-python.sh 2>/dev/null) || cannot "sam build needs Python 3.13 on the PATH"
[ "$("$python313" -c 'import sys; print(sys.version_info[:2] == (3, 13))')" = True ] ||
  cannot "sam build needs Python 3.13 (the Lambda runtime); found $("$python313" --version)"
build_dir=.aws-sam/local-$architecture
rm -rf "$logs"
mkdir -p "$logs"
echo "test-sam-local: sam build --parameter-overrides Architecture=$architecture into $build_dir"
if ! PATH="$(dirname "$python313"):$PATH" AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing \
  AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0 \
  "$sam" build --build-dir "$build_dir" --cache-dir "$cache/build-cache" \
  --parameter-overrides "Architecture=$architecture" >"$logs/sam-build.log" 2>&1; then
  tail -n 30 "$logs/sam-build.log" >&2
  echo "test-sam-local: sam build failed; log: $logs/sam-build.log" >&2
  exit 1
fi
phase_done "sam build ($architecture)"

# In the background, so a signal reaches the traps at once; finish() then stops it (it stops its servers and sam).
"$python" -m devkit.sam_local_check --sam "$sam" --template "$build_dir/template.yaml" --host "$gateway" \
  --architecture "$architecture" --logs "$logs" ${pull[@]+"${pull[@]}"} &
driver_pid=$!
wait "$driver_pid" && status=0 || status=$?
driver_pid=""
phase_done "servers + 5 x sam local invoke + checks"
exit "$status"
