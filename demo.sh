#!/usr/bin/env bash
# The main job: guestdbg's demo (installs what it needs first).
set -euo pipefail
cd "$(dirname "$0")"
tools/bootstrap.sh
exec python3 -m guestdbg plugins "$@"
