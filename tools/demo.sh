#!/usr/bin/env bash
# Sets attnprox up (tools/setup.sh) and runs the demo (examples/demo.py) with the installed package.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/tools/setup.sh"
echo
cd "$root"
/usr/bin/python3 examples/demo.py "$@"
