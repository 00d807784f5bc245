#!/usr/bin/env bash
# Prints the path of a Python 3.10 interpreter, or explains what to install and exits 1.
# TFX 1.16 wheels need Python 3.10 here; newer TFX wheels need a newer glibc than these machines have.
set -u
ok() { "$1" -c 'import sys; assert sys.version_info[:2] == (3, 10); print(sys.executable)' 2>/dev/null; }
if [ -n "${PYTHON:-}" ] && ok "$PYTHON"; then exit 0; fi
if command -v python3.10 >/dev/null 2>&1 && ok python3.10; then exit 0; fi
roots=()
[ -n "${PYENV_ROOT:-}" ] && roots+=("$PYENV_ROOT")
command -v pyenv >/dev/null 2>&1 && roots+=("$(pyenv root 2>/dev/null)")
roots+=("$HOME/.pyenv")
for root in "${roots[@]}"; do
  for candidate in "$root"/versions/3.10*/bin/python3.10; do
    [ -x "$candidate" ] && ok "$candidate" && exit 0
  done
done
cat >&2 <<'MSG'
error: no Python 3.10 interpreter found.
  Looked at: $PYTHON, python3.10 on PATH, $PYENV_ROOT/versions/3.10*, `pyenv root`/versions/3.10*, ~/.pyenv/versions/3.10*.
  TFX 1.16 (the pinned stack) needs CPython 3.10. Install one, e.g.:
    pyenv install 3.10.13          (then re-run make)
    apt-get install python3.10 python3.10-venv   (where your distribution ships it)
  or point PYTHON=/path/to/python3.10 at an existing interpreter.
MSG
exit 1
