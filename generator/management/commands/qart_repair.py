"""python manage.py qart_repair IMAGE --control CONTROL --expect TEXT -o OUT [--json]: make QR art scan."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from PIL import Image

from generator.core.codes import decoders, grids, images, qr, repair, robust, scan
from qartsite.plurals import counted


class Command(BaseCommand):
    help = (
        "Repair QR art so that phones read exactly TEXT: change only the module centres they would misread, "
        "using the module grid of the control image the art was made from, until the scan check passes with a "
        f"robust margin (zxing and WeChat read TEXT on the image, on {robust.NEEDED} of {robust.CAPTURES} "
        f"phone-like captures of the code and on {robust.WHOLE_NEEDED} of {robust.WHOLE_CAPTURES} captures of the "
        "whole image at phone size). Writes OUT (PNG) and prints the verdicts before and after, the margin "
        "reached, pixels changed and SSIM. Exit 0 when "
        "it passes with the margin, 1 when the best attempt falls short (it is written all the same), 2 for "
        "unusable inputs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("image", metavar="IMAGE", help="the QR art to repair")
        parser.add_argument("--control", required=True, metavar="CONTROL", help="its control image (module grid)")
        parser.add_argument("--expect", required=True, help="the exact text the code carries")
        parser.add_argument("-o", "--output", required=True, metavar="OUT", help="PNG file to write")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--threshold", type=float, default=None, help="scan probability needed to pass")

    def handle(self, *args, **options) -> None:
        # 1. Check inputs
        threshold = options["threshold"] if options["threshold"] is not None else settings.QART["SCAN_THRESHOLD"]
        if not 0.0 <= threshold <= 1.0:
            raise CommandError(f"--threshold must be between 0 and 1, got {threshold}", returncode=2)
        output = Path(options["output"])
        if output.suffix.lower() != ".png":
            # A lossy format would blur the repaired centres again.
            raise CommandError(f"{output}: choose a .png file name (lossless, so the repair survives)", returncode=2)
        try:
            expected = qr.validate_content(options["expect"])
        except qr.ContentError as exc:
            raise CommandError(f"--expect: {exc}", returncode=2) from None
        image, control = self.open_inputs(options["image"], options["control"])
        try:
            grid = grids.grid_from_control(control)
            grid.fitted_to(*image.size)
        except grids.RepairError as exc:
            raise CommandError(f"{options['control']}: {exc}", returncode=2) from None

        # 2. Repair and write the result (the best attempt even when it still fails)
        readers = decoders.available_readers(settings.QART["QREADER_WEIGHTS"])
        try:
            result = repair.repair(image, grid, expected, threshold=threshold, readers=readers)
        except grids.RepairError as exc:
            raise CommandError(f"{options['image']}: {exc}", returncode=2) from None
        try:
            result.image.save(output, format="PNG")
        except OSError as exc:
            raise CommandError(f"{output}: cannot write ({exc.strerror or exc})") from None

        # 3. Report
        self.stdout.write(self.format(options["image"], str(output), result, options["json"]))
        if not result.after.passed:
            raise CommandError(
                f"{options['image']}: still fails the scan check after repair "
                f"(p={result.after.scan_probability:.2f}); the best attempt was written to {output}.",
                returncode=1,
            )
        if not result.passed:
            raise CommandError(
                f"{options['image']}: passes the scan check but without the robust margin ({margin_words(result)}); "
                f"the best attempt was written to {output}.",
                returncode=1,
            )

    def open_inputs(self, image_path: str, control_path: str) -> tuple[Image.Image, Image.Image]:
        """Both images, or one CommandError (exit 2) naming every file that cannot be used."""
        opened, problems = [], []
        for path in (image_path, control_path):
            try:
                opened.append(images.open_image(path, max_pixels=settings.QART["MAX_IMAGE_PIXELS"]))
            except images.ImageError as exc:
                problems.append(str(exc))
        if problems:
            raise CommandError("\n".join(problems), returncode=2)
        return opened[0], opened[1]

    @staticmethod
    def format(path: str, output: str, result: repair.RepairResult, as_json: bool) -> str:
        if as_json:
            return json.dumps({
                "path": path,
                "output": output,
                "before": verdict_dict(result.before),
                "after": verdict_dict(result.after),
                "passed": result.passed,
                "modules_changed": result.modules_changed,
                "pixels_changed_fraction": round(result.pixels_changed_fraction, 5),
                "ssim": round(result.ssim, 4),
                "margin": result.margin,
                "robust": result.robust.to_dict() if result.robust is not None else None,
            }, ensure_ascii=False)
        if result.modules_changed == 0:
            change = "already passes, nothing changed"
        else:
            change = (f"changed {counted(result.modules_changed, 'module')}, "
                      f"{100 * result.pixels_changed_fraction:.1f} % of pixels, SSIM {result.ssim:.3f}")
        return (f"{path}: before {verdict_line(result.before)}; after {verdict_line(result.after)}, "
                f"{margin_words(result)}; {change}; wrote {output}")


def margin_words(result: repair.RepairResult) -> str:
    """The robust margin reached, in words."""
    held = result.robust
    if held is None:
        return "robust margin not checked (the scan check fails)"
    if not all(held.image.values()):
        missing = ", ".join(name for name, read in held.image.items() if not read) or "no margin decoder"
        return f"robust margin not held: not read on the image by {missing}"
    verb = "held" if held.passed else "not held"
    words = f"robust margin {verb}: both decoders read {held.captures_read} phone-like captures ({held.needed} needed)"
    if held.whole_needed and held.captures_read >= held.needed:
        words += (f" and {held.whole_read} captures of the whole image at phone size ({held.whole_needed} "
                  "needed)")
    return words


def verdict_dict(result: scan.ScanResult) -> dict:
    return {"verdict": result.verdict, "scan_probability": result.scan_probability, "decoded": result.decoded,
            "misread": result.misread}


def verdict_line(result: scan.ScanResult) -> str:
    note = " MISREAD" if result.misread else ""
    return f"{result.verdict.upper()}{note} p={result.scan_probability:.2f}"
