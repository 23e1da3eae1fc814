"""python manage.py qart_print [IMAGE] --content TEXT --width 20cm [--dpi 300] [--bleed 3mm] [--crop-marks]
[--format pdf|png|tiff|svg] [--cmyk [--profile ICC]] [--ecc L|M|Q|H] [--distance 1m] -o FILE [--json]: a print file
at physical size, verified before it is written.

Without IMAGE, the plain code of TEXT is printed (vectors in PDF and SVG). Needs no database.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns import printfiles
from generator.core.codes import images, print_specs, printing, qr
from qartsite.storage import write_whole

# .eps is named so that it meets its refusal (print_specs.NO_EPS) rather than a PDF under an EPS name.
EXTENSIONS = {".pdf": "pdf", ".png": "png", ".tif": "tiff", ".tiff": "tiff", ".svg": "svg", ".eps": "eps"}


class Command(BaseCommand):
    help = (
        "Write a print file of a QR image (or, without IMAGE, of the plain code of --content) at a physical width, "
        "read it back and verify it; the file is written only when it scans. Reports resolution, colour, boxes "
        "and where it will scan (preflight). Exit 1 when the file would not scan or an option is wrong. "
        + print_specs.NO_EPS
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("image", nargs="?", metavar="IMAGE", help="the art; omit it for the plain code")
        parser.add_argument("--content", required=True, help="the exact text the code carries")
        parser.add_argument("--width", required=True, help="printed side, quiet zone included: 20cm, 200mm, 8in")
        parser.add_argument("--dpi", default="300", help="dots per inch of raster output (default 300)")
        parser.add_argument("--bleed", default="0mm", help="art beyond the trim on each side, e.g. 3mm")
        parser.add_argument("--crop-marks", action="store_true", help="crop marks in a slug outside the bleed")
        parser.add_argument("--format", choices=print_specs.FORMATS, help="default: from FILE's extension, else pdf")
        parser.add_argument("--cmyk", action="store_true", help=f"CMYK through {printfiles.CMYK_PROFILE} "
                            "(plain codes: modules pure K); otherwise the file is RGB")
        parser.add_argument("--profile", default=printfiles.CMYK_PROFILE, help="CMYK ICC profile for --cmyk")
        parser.add_argument("--distance", default="1m", help="scanning distance for the preflight (default 1m)")
        parser.add_argument("--ecc", choices=list(qr.ECC_LEVELS), default=None,
                            help="the art's error-correction level (default the site's, H)")
        parser.add_argument("-o", "--output", required=True, metavar="FILE")
        parser.add_argument("--json", action="store_true", help="the report as one JSON object")

    def handle(self, *args, **options) -> None:
        output = Path(options["output"])
        fmt = options["format"] or EXTENSIONS.get(output.suffix.lower(), "pdf")
        try:
            spec = printfiles.spec_from({"width": options["width"], "dpi": options["dpi"], "bleed": options["bleed"],
                                         "crop_marks": "1" if options["crop_marks"] else "", "format": fmt,
                                         "cmyk": "1" if options["cmyk"] else ""})
            distance_m = print_specs.parse_length(options["distance"], "distance") / 1000
            ecc = options["ecc"] or settings.QART["DEFAULT_ECC"]
            subject = self.subject(options["image"], options["content"], ecc)
            made = printing.make_print_file(subject.source, spec, cmyk_profile=options["profile"],
                                            threshold=settings.QART["SCAN_THRESHOLD"])
        except (print_specs.PrintError, qr.ContentError, images.ImageError) as exc:
            raise CommandError(str(exc), returncode=1) from None
        made.report["preflight"] = printfiles.preflight_for(subject, spec.width_mm / 1000, distance_m)
        made.report["output"] = str(output)
        if not made.printable:
            why = "; ".join(reason["text"] for reason in made.verification.reasons) or "no reader found the code"
            made.report["written"] = False
            if options["json"]:
                self.stdout.write(json.dumps(made.report, ensure_ascii=False))
            raise CommandError(f"The {fmt.upper()} as written does not scan (scan probability "
                               f"{made.verification.scan_probability:.0%}: {why}); {output} was not written.",
                               returncode=1)
        self.write(output, made.data)
        made.report["written"] = True
        self.stdout.write(json.dumps(made.report, ensure_ascii=False) if options["json"] else self.summary(made))

    @staticmethod
    def subject(path: str | None, content: str, ecc: str) -> printfiles.PrintSubject:
        if path is None:
            code = printfiles.plain_code(content)
            return printfiles.subject_for_code(code)
        image = images.open_image(path, max_pixels=settings.QART["MAX_IMAGE_PIXELS"])
        code = qr.encode(content, ecc=ecc, max_version=40)
        return printfiles.PrintSubject(printing.PrintSource.raster(image, code.content), code, image, False)

    @staticmethod
    def write(output: Path, data: bytes) -> None:
        """Whole or not at all (`write_whole`): a reader never sees half a file."""
        try:
            write_whole(output, data)
        except IsADirectoryError:
            raise CommandError(f"{output}: is a folder; give the name of the file to write", returncode=1) from None
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror or exc}", returncode=1) from None

    @staticmethod
    def summary(made: printing.PrintFile) -> str:
        report = made.report
        pf = report["preflight"]
        lines = [
            f"{report['output']}: {report['format'].upper()}, {report['width']} square (quiet zone included)"
            + (f", bleed {report['bleed_mm']:g} mm" if report["bleed_mm"] else "")
            + (", crop marks" if report["crop_marks"] else ""),
            f"  resolution: {'vectors' if report['dpi'] is None else str(report['dpi']) + ' dpi'}"
            + (f"; the art has {report['source_dpi']} dpi at this width" if report.get("source_dpi") else "")
            + f" ({report['method']})",
            f"  colour: {report['colour']}",
            f"  read back and verified: scans (probability {made.verification.scan_probability:.0%})",
            f"  preflight: {pf['summary']}; modules {pf['module_mm']} mm",
        ]
        lines += [f"  warning: {text}" for text in report["warnings"] + pf["warnings"]]
        return "\n".join(lines)
