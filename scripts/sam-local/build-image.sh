#!/usr/bin/env bash
# build-image.sh IMAGE PYTHON: builds a Lambda-like python3.13 image under the name SAM derives for the runtime
# (public.ecr.aws/lambda/python:3.13-<arch>) in the engine DOCKER_HOST points at, without any container registry:
#   Debian bookworm (debootstrap --variant=minbase, from Debian's package mirror)
#   + PYTHON's whole CPython installation, copied to the same absolute path (its RUNPATH is absolute)
#   + awslambdaric (a binary wheel from PyPI) in /var/runtime, started by /var/runtime/bootstrap
# and AWS's variables (LAMBDA_TASK_ROOT, LAMBDA_RUNTIME_DIR, PATH, LANG, TZ). SAM adds its runtime interface emulator
# and the layers on top by itself. Used only by scripts/sam-local/run.sh for a private engine: a machine with its own
# Docker engine gets AWS's real image instead. Needs root (debootstrap).
set -euo pipefail

image=$1
python=$2
awslambdaric_version=3.1.1  # has a cp313 manylinux wheel for x86_64 and aarch64
mirror=${SAM_LOCAL_DEBIAN_MIRROR:-http://deb.debian.org/debian}

prefix=$(cd "$(dirname "$python")/.." && pwd -P)  # the installation root, e.g. ~/.pyenv/versions/3.13.0
version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
if [ "$version" != "3.13" ]; then
  echo "build-image: $python is Python $version, the runtime is python3.13" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sam-local-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

start=$SECONDS
# The shared libraries the interpreter's own extension modules load (ssl, ctypes, sqlite3, lzma, bz2, expat, uuid).
debootstrap --variant=minbase \
  --include=ca-certificates,libssl3,libffi8,libsqlite3-0,liblzma5,libbz2-1.0,libexpat1,libuuid1,zlib1g \
  bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 20 "$work/debootstrap.log" >&2
  echo "build-image: debootstrap failed (is $mirror reachable?)" >&2
  exit 1
}
echo "build-image: Debian bookworm minbase in $((SECONDS - start)) s"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc \
  "$rootfs"/usr/share/man "$rootfs"/usr/share/locale

# The interpreter at its own path, without its test suite, IDLE, tkinter and the host's site-packages.
mkdir -p "$rootfs$prefix"
tar -C "$prefix" -cf - \
  --exclude='./lib/python3.13/test' --exclude='./lib/python3.13/idlelib' --exclude='./lib/python3.13/tkinter' \
  --exclude='./lib/python3.13/turtledemo' --exclude='./lib/python3.13/site-packages/*' --exclude='__pycache__' \
  . | tar -C "$rootfs$prefix" -xf -
mkdir -p "$rootfs/var/lang/bin" "$rootfs/var/task" "$rootfs/var/runtime" "$rootfs/opt"
for name in python3.13 python3 python; do
  ln -sf "$prefix/bin/python3.13" "$rootfs/var/lang/bin/$name"
done

"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-compile --only-binary :all: \
  --target "$rootfs/var/runtime" "awslambdaric==$awslambdaric_version" 2> >(grep -v "^WARNING: Location" >&2)

# What RIE runs: the runtime interface client, with the handler SAM names (AWS_LAMBDA_FUNCTION_HANDLER / _HANDLER).
cat >"$rootfs/var/runtime/bootstrap" <<'EOF'
#!/bin/sh
export PYTHONPATH="/var/task:/opt/python:/var/runtime${PYTHONPATH:+:$PYTHONPATH}"
exec /var/lang/bin/python3.13 -m awslambdaric "${_HANDLER:-${AWS_LAMBDA_FUNCTION_HANDLER:-$1}}"
EOF
chmod 755 "$rootfs/var/runtime/bootstrap"

tar -C "$rootfs" -cf - . | docker import \
  --change 'WORKDIR /var/task' \
  --change 'ENV LANG=en_US.UTF-8' \
  --change 'ENV TZ=:/etc/localtime' \
  --change 'ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin' \
  --change 'ENV LAMBDA_TASK_ROOT=/var/task' \
  --change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
  --change 'ENTRYPOINT ["/var/rapid/aws-lambda-rie", "--log-level", "error"]' \
  - "$image" >/dev/null
echo "build-image: $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%d MB", $1/1e6}')) in $((SECONDS - start)) s"
