#!/usr/bin/env bash
# make-venv.sh DIR REQUIREMENTS: (re)creates the virtualenv DIR from a pinned requirements file, then writes a stamp
# so make rebuilds it only when the requirements change. A half-built virtualenv is removed, never reused.
set -euo pipefail
dir=$1; reqs=$2
py=$("$(dirname "$0")/find-python.sh")
rm -rf "$dir"
trap 'rm -rf "$dir"' ERR
echo "make-venv: creating $dir with $("$py" --version) from $reqs"
"$py" -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs" 2> >(grep -v '^WARNING: Location' >&2)
touch "$dir/.stamp"
