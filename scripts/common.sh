# Shared by scripts/run, scripts/test and scripts/bench (sourced, not run).
FERRY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# build_ferry DIR BUILD_TYPE [extra cmake args...]: configure once, build in parallel.
build_ferry() {
    local dir="$1" type="$2"; shift 2
    cmake -S "$FERRY_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
    cmake --build "$dir" --parallel "$(nproc)" -- --no-print-directory
}
