#!/usr/bin/env bash
# Installs what guestdbg's demo and tests need, once: Debian packages (GNU binutils and gcc for
# PowerPC, the Linux uapi headers, gdb-multiarch, qemu-system-ppc) and the Python package with its
# test extras. Idempotent and quiet when everything is already there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

debs=(gdb-multiarch binutils-powerpc-linux-gnu gcc-powerpc-linux-gnu
      linux-libc-dev-powerpc-cross linux-libc-dev qemu-system-ppc gcc
      python3-venv)  # tests/test_third_party_plugin.py makes a fresh venv (Debian splits ensurepip out)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi

PY="${PYTHON:-python3}"
if ! "$PY" -c "import guestdbg, guestdbg_booke, guestdbg_x86, pytest, hypothesis, pygdbmi, unicorn, atheris" 2>/dev/null \
   || [ "$("$PY" -c 'import guestdbg,os;print(os.path.dirname(guestdbg.__file__))')" != "$here/core/guestdbg" ]; then
  echo "bootstrap: pip install -e '$here[test]'" >&2
  "$PY" -m pip install -q --disable-pip-version-check -e "$here[test]" >&2
fi
