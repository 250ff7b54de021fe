#!/usr/bin/env bash
# Runs guestdbg's whole test suite (installs what it needs first). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
tools/bootstrap.sh
exec python3 -m pytest -q "$@"
