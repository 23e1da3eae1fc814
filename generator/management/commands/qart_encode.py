"""python manage.py qart_encode TEXT -o FILE: write a QR control image."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from generator.core.codes import qr

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


class Command(BaseCommand):
    help = "Encode TEXT as a QR code and write its ControlNet control image to FILE (.png, .jpg or .webp)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("text", help="what the code should carry, ideally a short link")
        parser.add_argument("-o", "--output", required=True, help="image file to write")
        parser.add_argument("--size", type=int, default=768, help="image side in pixels (default 768)")
        parser.add_argument("--border", type=int, default=4, help="quiet zone in modules (default 4)")
        parser.add_argument("--style", choices=qr.STYLES, default="square")
        parser.add_argument("--background", choices=list(qr.BACKGROUNDS), default="white")
        parser.add_argument("--ecc", choices=list(qr.ECC_LEVELS), default=None,
                            help="error correction (default the site's, QART_DEFAULT_ECC: H unless set)")
        parser.add_argument("--max-version", type=int, default=None,
                            help="largest QR version accepted (default the site's, QART_MAX_VERSION: 6 unless set)")

    def handle(self, *args, **options) -> None:
        output = Path(options["output"])
        image_format = FORMATS.get(output.suffix.lower())
        if image_format is None:
            raise CommandError(f"{output}: choose a .png, .jpg or .webp file name")
        if not 64 <= options["size"] <= 4096:
            raise CommandError(f"--size must be between 64 and 4096 pixels, got {options['size']}")
        if not 0 <= options["border"] <= 20:
            raise CommandError(f"--border must be between 0 and 20 modules, got {options['border']}")
        max_version = options["max_version"] or settings.QART["MAX_VERSION"]
        if not 1 <= max_version <= 40:
            raise CommandError(f"--max-version must be between 1 and 40, got {max_version}")

        try:
            code = qr.encode(options["text"], ecc=options["ecc"] or settings.QART["DEFAULT_ECC"],
                             max_version=max_version)
            image = qr.render_control_image(
                code, size=options["size"], border=options["border"], style=options["style"],
                background=options["background"],
            )
        except (qr.ContentError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        try:
            image.save(output, format=image_format)
        except OSError as exc:
            raise CommandError(f"{output}: cannot write ({exc.strerror or exc})") from None
        self.stdout.write(
            f"Wrote {output} ({options['size']}x{options['size']} px): version {code.version}, level {code.ecc}, "
            f"mask {code.mask}, {code.size}x{code.size} modules."
        )
