#!/usr/bin/env bash
# Memory-efficiency comparison memcached vs memcrab; see scripts/fill_compare.py.
#   scripts/fill-compare.sh [--scenarios a,b,c] [--flags "-m 64 -t 4"] ...
# Env: MEMCRAB_BIN (default <repo>/target/release/memcrab), MEMCACHED_BIN.
set -euo pipefail
exec python3 "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/fill_compare.py" "$@"
