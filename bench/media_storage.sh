#!/usr/bin/env bash
# Media in a bucket against media on disk: SeaweedFS on loopback (as make test starts it), then
# bench/media_storage.py, which stores a job's images and reads one back through each storage (the bucket also through
# bench/latency_proxy.py, as across a network).
#   bench/media_storage.sh [REPEATS=20]
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT_NAME=media-bench
. scripts/lib.sh

WORK=$(mktemp -d /tmp/qart-bench.XXXXXX)
trap 's3_stop; rm -rf "$WORK"' EXIT
S3_VOLUMES=96 s3_start "$WORK/s3"  # the bench stores ~1.7 GB; make test's 32 volumes hold 2
.venv/bin/python bench/media_storage.py "${1:-20}"
