#!/usr/bin/env bash
# Runs bench/milvus_engines.py for each embedded-Milvus candidate in its own virtualenv, each
# bounded by a time limit (a candidate that cannot finish is reported as such).
set -uo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
QUERIES=${QUERIES:-200}
LIMIT_S=${LIMIT_S:-600}
ENGINES=${ENGINES:-"lite-3.2.2 lite-2.5.1 server-2.3.5"}
work=$(mktemp -d)
run() {  # name, engine, index type, packages...
  local name=$1 engine=$2 index=$3; shift 3
  python3 -m venv "$work/$name" >/dev/null
  "$work/$name/bin/pip" install -q "$@" numpy "pymilvus==3.0.2" >/dev/null 2>&1
  PYTHONPATH=. timeout "$LIMIT_S" "$work/$name/bin/python" -m bench.milvus_engines --engine "$engine" --n "$N" \
    --queries "$QUERIES" --index "$index" 2>/dev/null | tail -n1 | grep . || echo "{\"engine\": \"$name\", \"error\": \"failed or did not finish within ${LIMIT_S} s\"}"
}
for e in $ENGINES; do
  case $e in
    lite-3.2.2) run "$e" lite HNSW "milvus-lite==3.2.2" ;;
    lite-3.2.2-flat) run "$e" lite FLAT "milvus-lite==3.2.2" ;;
    lite-2.5.1) run "$e" lite FLAT "milvus-lite==2.5.1" "setuptools<81" ;;
    server-2.3.5) run "$e" server HNSW "milvus==2.3.5" ;;
  esac
done
