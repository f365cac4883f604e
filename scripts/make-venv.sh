#!/usr/bin/env bash
# make-venv.sh DIR REQUIREMENTS [--with-project]: (re)creates the virtualenv DIR from a pinned requirements file, then
# writes a stamp so make rebuilds it only when its inputs change. A half-built virtualenv is removed, never reused.
# --with-project also installs this project, editable and without dependencies (REQUIREMENTS has them all), which
# puts its console script `uploadcare-s3-copy` in DIR/bin (pip fetches setuptools to build it, from the index).
set -euo pipefail
dir=$1; reqs=$2; with_project=${3:-}
py=$("$(dirname "$0")/find-python.sh")
rm -rf "$dir"
trap 'rm -rf "$dir"' ERR
echo "make-venv: creating $dir with $("$py" --version) from $reqs"
"$py" -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs" 2> >(grep -v '^WARNING: Location' >&2)
if [ "$with_project" = --with-project ]; then
  root=$(cd "$(dirname "$0")/.." && pwd)
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --editable "$root"
  # setuptools' build leftovers: never to be packed into the Lambda layer
  rm -rf "$root"/*.egg-info "$root"/layers/common/*.egg-info "$root"/ops/*.egg-info
fi
touch "$dir/.stamp"
