#!/usr/bin/env bash
# Builds a Python hoist frontend into a WebAssembly component with componentize-py.
#
#   sdk/python/build.sh [-m MODULE] [--no-stub-wasi] APP_DIR -o OUT.wasm
#   sdk/python/build.sh --bindings [DIR]
#
# APP_DIR holds the frontend's module (MODULE.py, default `frontend`) that ends with
# `Builder = hoist_frontend.export(build)`; the SDK (sdk/python/src) is added to the Python path.
# The world is wit/ (package hoist:frontend, world `frontend`); componentize-py generates the
# bindings (module `hoist_wit`) from it on every build, and this script also regenerates the
# binding stubs in sdk/python/build/bindings for IDEs, type checkers and the SDK's unit tests
# (`--bindings` does only that). Nothing is copied from wit/ by hand.
#
# WASI: by default the component is built with componentize-py's --stub-wasi, so it imports
# nothing but hoist:frontend/gateway (a frontend gets no files, clock or randomness from the host
# anyway); stdout and stderr are then discarded: report with hoist_frontend.log()/warn().
#
# Environment:
#   HOIST_PY_VENV   the virtualenv holding componentize-py (default /var/cache/hoist/venv);
#                   created, and componentize-py $COMPONENTIZE_PY_VERSION installed from PyPI,
#                   when missing.
#   HOIST_PY_CACHE  a directory of built components keyed by the hash of every input (the app,
#                   the SDK, wit/, the componentize-py version, the flags): a hit copies the
#                   component instead of compiling it again (componentize-py takes ~20 s).
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
wit="$root/wit"
sdk_src="$here/src"
venv="${HOIST_PY_VENV:-/var/cache/hoist/venv}"

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

die() {
    echo "build.sh: $*" >&2
    exit 1
}

ensure_venv() {
    local cpy="$venv/bin/componentize-py"
    if [[ -x "$cpy" ]] && [[ "$("$cpy" --version 2>/dev/null)" == "componentize-py $COMPONENTIZE_PY_VERSION" ]]; then
        return
    fi
    echo "build.sh: installing componentize-py $COMPONENTIZE_PY_VERSION into $venv" >&2
    mkdir -p "$(dirname "$venv")"
    local lock="$venv.lock"
    (
        flock 9
        if ! [[ -x "$cpy" ]] || [[ "$("$cpy" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]]; then
            python3 -m venv "$venv" || die "python3 -m venv $venv failed (install python3-venv)"
            "$venv/bin/pip" install --quiet --disable-pip-version-check \
                "componentize-py==$COMPONENTIZE_PY_VERSION" || die "pip install componentize-py failed"
        fi
    ) 9>"$lock"
}

componentize_py() {
    # Not VIRTUAL_ENV: componentize-py would add that venv's site-packages to the component.
    env -u VIRTUAL_ENV "$venv/bin/componentize-py" -q -d "$wit" -w frontend --world-module hoist_wit "$@"
}

regenerate_bindings() {
    local out="$1"
    (
        # Concurrent builds (parallel tests) take turns replacing the stubs.
        flock 9
        local tmp
        tmp="$(mktemp -d "$(dirname "$out")/.bindings.XXXXXX")"
        componentize_py bindings "$tmp" >/dev/null
        if diff -rq "$tmp" "$out" >/dev/null 2>&1; then
            rm -rf "$tmp"  # unchanged: readers of the old stubs are never disturbed
        else
            rm -rf "$out"
            mv "$tmp" "$out"
        fi
    ) 9>"$(dirname "$out")/.bindings.lock"
}

# The hash of everything the component is made of.
input_hash() {
    local app="$1" module="$2" stub="$3"
    {
        echo "componentize-py $COMPONENTIZE_PY_VERSION module=$module stub-wasi=$stub"
        sha256sum < "$here/build.sh"
        (cd "$root" && find wit -type f -name '*.wit' | LC_ALL=C sort | xargs sha256sum)
        (cd "$sdk_src" && find . -type f -name '*.py' -o -type f -name '*.typed' | LC_ALL=C sort | xargs sha256sum)
        (cd "$app" && find . -type f ! -path '*/__pycache__/*' | LC_ALL=C sort | xargs -r sha256sum)
    } | sha256sum | cut -d' ' -f1
}

module=frontend
out=""
app=""
stub=yes
bindings_only=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        -m) module="${2:?-m needs a module name}"; shift 2 ;;
        -o) out="${2:?-o needs a path}"; shift 2 ;;
        --no-stub-wasi) stub=no; shift ;;
        --bindings) bindings_only="${2:-$here/build/bindings}"; shift $(($# > 1 ? 2 : 1)) ;;
        -h|--help) usage ;;
        -*) die "unknown option $1" ;;
        *) [[ -z "$app" ]] || die "one APP_DIR only (got $app and $1)"; app="$1"; shift ;;
    esac
done

ensure_venv
mkdir -p "$here/build"
if [[ -n "$bindings_only" ]]; then
    mkdir -p "$(dirname "$bindings_only")"
    regenerate_bindings "$bindings_only"
    echo "$bindings_only"
    exit 0
fi

[[ -n "$app" && -n "$out" ]] || usage
[[ -d "$app" ]] || die "$app: not a directory"
app="$(cd "$app" && pwd)"
out="$(realpath -m "$out")"
[[ -f "$app/$module.py" || -f "$app/$module/__init__.py" ]] || die "$app has no module $module ($module.py)"
case "$module" in hoist_wit|frontend_world|componentize_py_*) die "module name $module clashes with the generated bindings" ;; esac

regenerate_bindings "$here/build/bindings"

flags=()
[[ "$stub" == yes ]] && flags+=(--stub-wasi)
cached=""
if [[ -n "${HOIST_PY_CACHE:-}" ]]; then
    mkdir -p "$HOIST_PY_CACHE"
    cached="$HOIST_PY_CACHE/$(input_hash "$app" "$module" "$stub").wasm"
    if [[ -f "$cached" ]]; then
        touch "$cached"
        cp "$cached" "$out.tmp.$$" && mv "$out.tmp.$$" "$out"
        echo "build.sh: $out (cached: $cached)" >&2
        exit 0
    fi
fi

tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(cd "$app" && componentize_py componentize "${flags[@]}" -p "$app" -p "$sdk_src" "$module" -o "$tmp") \
    || die "componentize-py failed for $app/$module.py"
if [[ -n "$cached" ]]; then
    cp "$tmp" "$cached.tmp.$$" && mv "$cached.tmp.$$" "$cached"
    # Keep the 8 newest components (each is ~18 MB): older inputs are unlikely to come back.
    ls -t "$HOIST_PY_CACHE"/*.wasm 2>/dev/null | tail -n +9 | xargs -r rm -f
fi
mv "$tmp" "$out"
echo "build.sh: $out" >&2
