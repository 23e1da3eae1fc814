"""Print files at poster sizes: seconds, bytes and peak memory to make one, read back and verified.

    .venv/bin/python bench/print_files.py [--width 82cm] [--dpi 300] [--json]

Each case runs in a process of its own (`multiprocessing`, spawned), so its peak memory (`ru_maxrss` of that
process) is the case's alone. Cases: stand-in diffusion art (a 768 px code image with noise, as generated art is
stored) as PNG, PDF, RGB TIFF and CMYK TIFF (through Ghostscript's profile), and the plain code as PNG and as
vector PDF, all with 3 mm bleed and crop marks. `generator.core.codes.printing.make_print_file` does all of it: the
art resampled to the print's pixels, the file written, read back from its bytes and verified. This is the work
`campaigns.printfiles` does in the request for rasters up to 25 million pixels, and `campaigns.print_builds` on a
worker above that.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import sys
import time
import warnings
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

URL = "https://qart.example/r/AbC12345"
CASES = [("art", "png"), ("art", "pdf"), ("art", "tiff"), ("art", "cmyk tiff"), ("plain", "png"), ("plain", "pdf")]
# Ghostscript's CMYK profile from Debian's libgs-common, as `campaigns.printfiles.CMYK_PROFILE`.
CMYK_PROFILE = "/usr/share/color/icc/ghostscript/default_cmyk.icc"


def stand_in_art():
    """A 768 px code image with texture: as hard to compress as generated art, or harder."""
    import numpy as np
    from PIL import Image

    from generator.core.codes import qr

    control = qr.render_control_image(qr.encode(URL, max_version=40), 768)
    noise = np.random.default_rng(0).uniform(0, 70, (768, 768, 3))
    return Image.fromarray((np.asarray(control.convert("RGB")) * 0.7 + noise).clip(0, 255).astype("uint8"))


def one_case(source: str, fmt: str, width: str, dpi: int) -> dict:
    warnings.simplefilter("ignore")  # Pillow's decompression-bomb warning when the file is read back
    from generator.core.codes import print_specs, printing, qr

    spec = print_specs.PrintSpec(width_mm=print_specs.parse_length(width), dpi=dpi, bleed_mm=3, crop_marks=True,
                              format=fmt.split()[-1], cmyk=fmt.startswith("cmyk"))
    made_from = (printing.PrintSource.raster(stand_in_art(), URL) if source == "art"
                 else printing.PrintSource.plain(qr.encode(URL, max_version=40)))
    started = time.perf_counter()
    made = printing.make_print_file(made_from, spec, cmyk_profile=CMYK_PROFILE if spec.cmyk else None)
    seconds = time.perf_counter() - started
    side = print_specs.pixels(print_specs.geometry(spec).media_mm, dpi)
    return {"source": source, "format": fmt, "pixels": side * side if made.report.get("dpi") else 0,
            "seconds": round(seconds, 2), "megabytes": round(len(made.data) / 1e6, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "printable": made.printable}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", default="82cm", help="print width (default 82cm: 10,000 px a side at 300 dpi "
                                                        "with bleed and marks, the largest raster allowed)")
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    rows = []
    for source, fmt in CASES:
        with spawn.Pool(1) as pool:
            rows.append(pool.apply(one_case, (source, fmt, args.width, args.dpi)))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{date.today()} {platform.processor() or platform.machine()} width {args.width} at {args.dpi} dpi")
    print("| print file | pixels | seconds | MB | peak memory MB | printable |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        pixels = f"{row['pixels'] / 1e6:.0f} M" if row["pixels"] else "vectors"
        print(f"| {row['source']} {row['format'].upper()} | {pixels} | {row['seconds']} | {row['megabytes']} | "
              f"{row['peak_rss_mb']} | {row['printable']} |")


if __name__ == "__main__":
    main()
