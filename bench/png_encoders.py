"""PNG encoders' time and size on 768² pictures like the ones qart stores (`images.png_bytes`'s settings).

    OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python bench/png_encoders.py

One core, OpenCV's libpng at zlib level 1 with each strategy and row filter, and Pillow for comparison, on a
code-like candidate (the QR control image blended 55/45 with blurred noise, as bench/rq_job.py's stand-in), the
blurred noise alone, a photograph (skimage's astronaut, where installed), and the control image itself. Median of 15
encodes; every file is decoded and checked pixel for pixel. Prints Markdown for bench/RESULTS.md.
"""

import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from generator.core.codes import images, qr  # noqa: E402

RLE, HUFFMAN = cv2.IMWRITE_PNG_STRATEGY_RLE, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY
SETTINGS = {
    "RLE, libpng's choice of filter (before)": (RLE, None),
    "RLE, Paeth (`images.PNG_PARAMS`)": (RLE, cv2.IMWRITE_PNG_FILTER_PAETH),
    "RLE, Sub": (RLE, cv2.IMWRITE_PNG_FILTER_SUB),
    "RLE, fast filters (None, Sub, Up)": (RLE, cv2.IMWRITE_PNG_FAST_FILTERS),
    "Huffman only, Paeth": (HUFFMAN, cv2.IMWRITE_PNG_FILTER_PAETH),
    "Huffman only, Sub": (HUFFMAN, cv2.IMWRITE_PNG_FILTER_SUB),
}


def pictures() -> dict[str, np.ndarray]:
    control = np.asarray(qr.render_control_image(qr.encode("https://qart.example/abc123"), 768).convert("RGB"))
    noise = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (768, 768, 3), dtype=np.uint8), (0, 0), 3)
    found = {"code-like candidate": cv2.addWeighted(control, 0.55, noise, 0.45, 0), "blurred noise": noise}
    try:
        from skimage import data

        found["photograph"] = cv2.resize(data.astronaut(), (768, 768))
    except ImportError:  # not among the project's requirements
        pass
    found["control image"] = control
    return found


def timed(encode, runs: int = 15) -> tuple[float, bytes]:
    times, data = [], b""
    for _ in range(runs):
        started = time.perf_counter()
        data = encode()
        times.append(time.perf_counter() - started)
    return statistics.median(times), data


def main() -> None:
    cv2.setNumThreads(1)
    print("| picture | encoder | ms | KiB |\n| --- | --- | --- | --- |")
    for name, rgb in pictures().items():
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        for label, (strategy, row_filter) in SETTINGS.items():
            params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, strategy]
            params += [cv2.IMWRITE_PNG_FILTER, row_filter] if row_filter is not None else []
            seconds, data = timed(lambda params=params, bgr=bgr: cv2.imencode(".png", bgr, params)[1].tobytes())
            assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), bgr)
            print(f"| {name} | {label} | {1000 * seconds:.1f} | {len(data) / 1024:.0f} |")
        picture = Image.fromarray(rgb)
        seconds, data = timed(lambda picture=picture: images.png_bytes(picture))
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), rgb)
        print(f"| {name} | `images.png_bytes` (the product, with its RGB to BGR copy) | {1000 * seconds:.1f} | "
              f"{len(data) / 1024:.0f} |")

        def pillow(picture=picture) -> bytes:
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG", compress_level=1)
            return buffer.getvalue()

        seconds, data = timed(pillow)
        print(f"| {name} | Pillow, level 1 | {1000 * seconds:.1f} | {len(data) / 1024:.0f} |")


if __name__ == "__main__":
    main()
