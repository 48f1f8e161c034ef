# Sourced by the CI scripts that install the reporter into a Python other than 3.11:
# sets $python to the first argument, else to python3.13 or python3.12 from PATH or pyenv.
python=${1:-}
if [ -z "$python" ]; then
    for candidate in python3.13 /root/.pyenv/versions/3.13*/bin/python3.13 python3.12 /root/.pyenv/versions/3.12*/bin/python3.12; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c pass 2>/dev/null; then python=$(command -v "$candidate"); break; fi
    done
fi
[ -n "$python" ] || { echo "$(basename "$0"): no python3.13 or python3.12 on this machine: pass one" >&2; exit 1; }
