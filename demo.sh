#!/usr/bin/env bash
# The main job: guestdbg's demo (installs what it needs first). A real gdb-multiarch debugs a
# guest on the emulated e500mc KVM host through guestdbg's GDB stub: software and hardware
# breakpoints, a write watchpoint, a single step, and the guest's own breakpoint instruction
# handed back to the guest. Prints a transcript; exit status 0 when every step behaved.
# Extra arguments go to `guestdbg demo` (--arch, --gdb, --build-dir).
set -euo pipefail
cd "$(dirname "$0")"
tools/bootstrap.sh
exec "${PYTHON:-python3}" -m guestdbg demo "$@"
