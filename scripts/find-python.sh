#!/usr/bin/env sh
# Print the path of a Python >= 3.12 found on this machine, or explain what to install.
# pyenv shims for versions that are installed but not selected exist on PATH and fail when run,
# so each candidate is executed, not just looked up, and pyenv's own version folders are tried too.
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
for cand in python3.13 python3.12 python3.14 python3; do
    if command -v "$cand" >/dev/null 2>&1 && ok "$cand"; then
        "$cand" -c 'import sys; print(sys.executable)'; exit 0
    fi
done
if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root)
    for cand in "$root"/versions/3.13*/bin/python3.13 "$root"/versions/3.12*/bin/python3.12 "$root"/versions/3.14*/bin/python3.14; do
        if [ -x "$cand" ] && ok "$cand"; then echo "$cand"; exit 0; fi
    done
fi
echo "gmat-sweep needs Python >= 3.12 (the GMAT engine wheel, gmatpy, is built for 3.12-3.15)." >&2
echo "None was found on PATH (tried python3.13, python3.12, python3.14, python3)." >&2
echo "Install one, e.g. 'apt-get install python3.13 python3.13-venv' on Debian 13," >&2
echo "'pyenv install 3.12' with pyenv, or 'brew install python@3.12' on macOS, then rerun make." >&2
exit 1
