#!/bin/bash
# On the device machine: unpack whatever this call carries, then run `bench/gpu.py --out $OUT ARGS...`.
#
#   bash bench/device.sh --variants A,P0,P8 --seed-sets 3 --deadline 480
#   bash bench/device.sh --script bench/fa4_tiles.py --reps 40      (another script, same setup)
#
# Carried folders (bench/GPU.md says how each is built here; any subset, in any call):
#   .whl/*.whl, .whl2/*.whl     Python wheels, installed into /tmp/site (diffusers, torchao, qrcode, ...)
#   .whl*/fa4/, .whl*/cu13.*    FlashAttention 4's wheels and the two parts of its CuTe DSL libraries (an xz tar
#                               cut in two, or the wheel itself cut in two: cu13.whl.part00/01): parked in
#                               /tmp/qart_parts and unpacked into /tmp/fa4site once both parts have arrived
#   .whl*/*.tar.xz              packages installed here and packed (Django's stack, OpenCV contrib): into /tmp/site
#   .whl*/redis/*.deb           Debian's redis-server, unpacked into /tmp/redis (bench/rq_job.py starts it)
#   .whl*/zbar/*.so.*           libzbar0 and its libraries (the verifier's third decoder), added to ld.so.cache
# A warm machine keeps /tmp between calls: what an earlier call unpacked is there for the next.
set -o pipefail
mkdir -p /tmp/site /tmp/qart_parts "$OUT"
for d in .whl .whl2 .whl3; do
  [ -d "$d" ] || continue
  if ls "$d"/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$d"/*.whl || exit 3
  fi
  [ -d "$d/fa4" ] && cp "$d"/fa4/* /tmp/qart_parts/
  cp "$d"/cu13.tar.xz.part* "$d"/cu13.whl.part* /tmp/qart_parts/ 2>/dev/null
  for t in "$d"/*.tar.xz; do  # once per machine: a later call finds the folder still there
    [ -f "$t" ] && [ ! -f "/tmp/site/.$(basename "$t").done" ] && { tar xJf "$t" -C /tmp/site || exit 3; } \
      && touch "/tmp/site/.$(basename "$t").done"
  done
  if [ -d "$d/zbar" ] && [ ! -f /etc/ld.so.conf.d/zz-qart-zbar.conf ] && [ -w /etc/ld.so.conf.d ]; then
    # libzbar0 and the libraries it needs, copied from a Debian 12 box (bench/GPU.md, fifteenth step): only the
    # sonames the device lacks are added, listed last, so none of the device's own libraries is replaced.
    mkdir -p /tmp/zbar && for f in "$d"/zbar/*; do
      ldconfig -p | awk '{print $1}' | grep -qx "$(basename "$f")" || cp "$f" /tmp/zbar/
    done
    echo /tmp/zbar > /etc/ld.so.conf.d/zz-qart-zbar.conf && ldconfig
  fi
  if [ -d "$d/redis" ]; then
    mkdir -p /tmp/redis && for f in "$d"/redis/*.deb; do dpkg -x "$f" /tmp/redis; done
    printf '#!/bin/sh\nLD_LIBRARY_PATH=/tmp/redis/usr/lib/x86_64-linux-gnu exec /tmp/redis/usr/bin/redis-server "$@"\n' \
      > /tmp/redis/rs && chmod +x /tmp/redis/rs
  fi
done
export PYTHONPATH=/tmp/site
if [ -f /tmp/qart_parts/cu13.tar.xz.part00 ] && [ -f /tmp/qart_parts/cu13.tar.xz.part01 ] \
   && [ ! -d /tmp/fa4site/nvidia_cutlass_dsl ]; then
  mkdir -p /tmp/fa4site && for w in /tmp/qart_parts/*.whl; do python3 -m zipfile -e "$w" /tmp/fa4site; done \
    && cat /tmp/qart_parts/cu13.tar.xz.part00 /tmp/qart_parts/cu13.tar.xz.part01 | tar xJf - -C /tmp/fa4site || exit 4
fi
if [ -f /tmp/qart_parts/cu13.whl.part00 ] && [ -f /tmp/qart_parts/cu13.whl.part01 ] \
   && [ ! -d /tmp/fa4site/nvidia_cutlass_dsl ]; then
  mkdir -p /tmp/fa4site && cat /tmp/qart_parts/cu13.whl.part00 /tmp/qart_parts/cu13.whl.part01 > /tmp/cu13.whl \
    && for w in /tmp/qart_parts/*.whl /tmp/cu13.whl; do python3 -m zipfile -e "$w" /tmp/fa4site || exit 4; done
fi
# PYTHONPATH runs no .pth files: the CuTe DSL's own packages are named by hand (bench/GPU.md, trap 7).
[ -d /tmp/fa4site/nvidia_cutlass_dsl ] \
  && export PYTHONPATH=/tmp/site:/tmp/fa4site:/tmp/fa4site/nvidia_cutlass_dsl/dsl_packages
[ -x /tmp/redis/rs ] && export QART_REDIS_SERVER=/tmp/redis/rs
echo "device.sh: PYTHONPATH=$PYTHONPATH; FA4 $([ -d /tmp/fa4site/nvidia_cutlass_dsl ] && echo unpacked || echo absent);" \
  "zbar $(python3 -c 'import pyzbar.pyzbar' 2>/dev/null && echo loads || echo absent)"
script=bench/gpu.py
if [ "${1:-}" = --script ]; then
  script=$2
  shift 2
fi
PYTHONUNBUFFERED=1 python3 -W ignore "$script" --out "$OUT" "$@" 2>&1 | tee -a "$OUT/gpu_log.txt"
