"""python manage.py qart_scan IMAGE [IMAGE ...] [--expect TEXT] [--json]: will a phone read these, and why not?"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from generator import verifier_models
from generator.core.codes import decision, decoders, images, scan
from generator.core.codes.echoes import echo


class Command(BaseCommand):
    help = (
        "Verify that phones read QR images (exactly TEXT with --expect) and say why not: symbol grades A-F "
        "and reasons, judged by the active verifier model (as jobs are). Exit 0 when every image could be read as an "
        "image, 2 otherwise (one message per bad file)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("images", nargs="+", metavar="IMAGE")
        parser.add_argument("--expect", help="the exact text the codes must carry; another text is a misread")
        parser.add_argument("--json", action="store_true", help="one JSON object per image per line")
        parser.add_argument("--threshold", type=float, default=None, help="scan probability needed to pass")

    def handle(self, *args, **options) -> None:
        threshold = options["threshold"] if options["threshold"] is not None else settings.QART["SCAN_THRESHOLD"]
        if not 0.0 <= threshold <= 1.0:
            raise CommandError(f"--threshold must be between 0 and 1, got {threshold}")
        readers = decoders.available_readers(settings.QART["QREADER_WEIGHTS"])
        model = None
        bad = 0
        for path in options["images"]:
            try:
                image = images.open_image(path, max_pixels=settings.QART["MAX_IMAGE_PIXELS"])
            except images.ImageError as exc:
                self.stderr.write(str(exc))
                bad += 1
                continue
            model = model or self.active_model()
            result = scan.verify(image, options["expect"], threshold=threshold, readers=readers, model=model)
            self.stdout.write(self.format(path, result, options["json"]))
        if bad:
            raise CommandError(f"{bad} of {len(options['images'])} inputs could not be read", returncode=2)

    def active_model(self) -> decision.DecisionModel:
        """The model jobs and pages judge by; the shipped default, said so, when the database cannot tell."""
        try:
            return verifier_models.active_model()
        except DatabaseError as exc:
            self.stderr.write(f"The database could not say which verifier model is active ({exc}); judging with the "
                              f"shipped default {decision.DEFAULT_MODEL.id}, which jobs may not use.")
            return decision.DEFAULT_MODEL

    @staticmethod
    def format(path: str, result: scan.ScanResult, as_json: bool) -> str:
        if as_json:
            return json.dumps({
                "path": path,
                "decoded": result.decoded,
                "expected_match": result.expected_match,
                "misread": result.misread,
                "scan_probability": result.scan_probability,
                "verdict": result.verdict,
                "seconds": result.seconds,
                "grades": result.grades,
                "reasons": result.reasons,
                "model": result.model,
            }, ensure_ascii=False)
        # Each decoder over the views it ran on (WeChat reads the original only).
        votes = ", ".join(
            f"{name} {sum(bool(r.texts) for r in mine)}/{len(mine)}"
            for name in dict.fromkeys(r.decoder for r in result.reads)
            for mine in [[r for r in result.reads if r.decoder == name]]
        )
        # Quoted as messages quote (a vCard's line breaks as \u000a, one line an image), whole: a misread past a
        # message's 60 characters (a link's UTM parameters) is what the person running this looks for.
        read = " | ".join(f"“{echo(text, limit=None)}”" for text in result.decoded) or "nothing"
        note = " MISREAD" if result.misread else ""
        why = "".join(f"\n  - {reason['text']}" for reason in result.reasons)
        return (f"{path}: {result.verdict.upper()}{note} p={result.scan_probability:.2f} read {read} "
                f"({votes}) {result.seconds:.2f}s{why}")
