#!/usr/bin/env bash
# Prints the interpreter for the development virtualenvs: Python 3.13 (the Lambda runtime) when installed through
# pyenv or on the PATH, otherwise python3 if it is 3.11 or newer, saying so on stderr. Exits 1 when neither exists.
set -euo pipefail
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  best=$(ls -d "$root"/versions/3.13.* 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$best" ] && [ -x "$best/bin/python3.13" ]; then
    echo "$best/bin/python3.13"; exit 0
  fi
fi
if command -v python3.13 >/dev/null 2>&1; then command -v python3.13; exit 0; fi
if command -v python3 >/dev/null 2>&1 && python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "find-python: Python 3.13 (the Lambda runtime) not found; falling back to $(python3 --version) at $(command -v python3)" >&2
  command -v python3; exit 0
fi
echo "find-python: need Python 3.13 (pyenv install 3.13) or python3 >= 3.11; found neither" >&2
exit 1
