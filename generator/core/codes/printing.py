"""Print files at physical size: PDF, PNG, TIFF and SVG of a code or its art, read back by the verifier.

Plain Python (reportlab, pypdfium2, Pillow and the QR core), importable without Django: callers pass the art,
the exact text it carries and the ICC profile's path in.

    spec = print_specs.PrintSpec(width_mm=print_specs.parse_length("20cm"), dpi=300, bleed_mm=3, format="pdf")
    made = make_print_file(PrintSource.plain(qr.encode(link, max_version=40)), spec)
    made.data, made.report["source_dpi"], made.verification.passed

What to print and its page are `print_specs`' (`PrintSpec`, `Geometry`); this module writes and reads back the
files. Geometry (PDF; rasters and SVG draw the same page): the TrimBox is the `width` square, quiet zone included;
the BleedBox is the TrimBox grown by `bleed` on each side (art is extended into it by repeating its edge,
a plain code's paper stays white); crop marks sit in a slug outside the BleedBox, and without marks the
MediaBox is the BleedBox.

Resolution: a plain code is drawn as vectors (PDF, SVG) or at exactly the print's pixels (PNG, TIFF). Art
whose engine is procedural is drawn again at the print's pixels (`PrintSource.procedural`); other art is
resampled with a stated method (Lanczos) and the report says by how much, warning when the art itself has
fewer than `MIN_SOURCE_DPI` pixels per inch at that width. Nothing is offered unread: every file is decoded
from its own bytes (PDFs rasterised by PDFium) and verified (`PrintFile.verification`).

Colour: RGB unless `cmyk`; then a plain code's modules are pure K (0/0/0/100) and art is converted through the
named ICC profile (its dark modules become the profile's rich black, not pure K, and the report says so:
`report["pure_k"]`). CMYK PDFs carry a PDF/X-style output intent embedding that profile; CMYK TIFFs embed it
(`cmyk`).
"""

from __future__ import annotations

import io
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from generator.core.codes import cmyk, print_specs, qr, scan

MEDIA_TYPES = {"pdf": "application/pdf", "png": "image/png", "tiff": "image/tiff", "svg": "image/svg+xml"}
QUIET_ZONE = 4  # modules of light border around a plain code, inside the TrimBox
MIN_SOURCE_DPI = 150  # below this, art resampled to print size shows soft edges at reading distance
MARK_WIDTH_PT = 0.25
READ_BACK_SIDE = 1536  # a read-back page is rendered at about this many pixels (what the verifier looks at)


@dataclass(frozen=True)
class PrintSource:
    """What is printed: a plain code (vectors), or art as pixels, optionally able to draw itself at any size.

    Attributes:
        content: the exact text the code carries; the read-back must find it.
        code: the plain code (drawn as vectors), or None for art.
        image: the art as stored, or None for a plain code.
        render: procedural art: draws the art again at a side of N pixels (the halftone engine).
        render_method: how `render` draws, for the report ("re-rendered by the halftone engine").
    """

    content: str
    code: qr.QRCode | None = None
    image: Image.Image | None = None
    render: Callable[[int], Image.Image] | None = None
    render_method: str = ""

    @classmethod
    def plain(cls, code: qr.QRCode) -> PrintSource:
        return cls(code.content, code=code)

    @classmethod
    def raster(cls, image: Image.Image, content: str) -> PrintSource:
        return cls(content, image=image.convert("RGB"))

    @classmethod
    def procedural(cls, image: Image.Image, content: str, render: Callable[[int], Image.Image],
                   method: str) -> PrintSource:
        return cls(content, image=image.convert("RGB"), render=render, render_method=method)


@dataclass
class PrintFile:
    """A written and read-back print file.

    Attributes:
        data: the file's bytes.
        format: one of `print_specs.FORMATS`.
        verification: the verifier's verdict on the file as read back from `data`.
        report: what `--json` prints: sizes, resolution, colour, boxes, method, warnings and the verdict.
    """

    data: bytes
    format: str
    verification: scan.ScanResult
    report: dict = field(default_factory=dict)

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    @property
    def printable(self) -> bool:
        """Whether the file as written scans: only then is it offered."""
        return self.verification.passed


def make_print_file(
    source: PrintSource, spec: print_specs.PrintSpec, *, cmyk_profile: str | None = None,
    threshold: float = scan.DEFAULT_THRESHOLD,
) -> PrintFile:
    """Write `source` as a print file of `spec`, read it back from its bytes and verify it.

    Args:
        source (`PrintSource`): the plain code or the art, and the text it carries.
        spec (`print_specs.PrintSpec`): size, resolution, bleed, marks, format and colour.
        cmyk_profile (`str`, *optional*): path of the CMYK ICC profile art is converted through (needed for
            art in CMYK; plain codes are pure K without it). When given, a CMYK PDF names it in its output intent
            and a CMYK TIFF embeds it.
        threshold (`float`, *optional*, defaults to 0.5): scan probability the read-back needs to pass.

    Returns:
        A `PrintFile`; check `printable` before offering it.

    Raises:
        print_specs.PrintError: the spec cannot be met (the message says why and what to choose instead).
    """
    # 1. Check inputs
    vector = source.code is not None
    spec.validate(vector)
    if spec.cmyk and not vector and not cmyk_profile:
        raise print_specs.PrintError("CMYK art needs an ICC profile to convert through; none is installed here.")
    page = print_specs.geometry(spec)
    profile = _load_profile(cmyk_profile) if spec.cmyk and cmyk_profile else None
    report: dict = {
        "format": spec.format,
        "width_mm": round(spec.width_mm, 2),
        "width": print_specs.describe_length(spec.width_mm),
        "bleed_mm": spec.bleed_mm,
        "crop_marks": spec.crop_marks,
        "boxes_pt": page.boxes_pt() if spec.format == "pdf" else None,
        "warnings": [],
    }

    # 2. The art at the print's pixels (plain codes in PDF and SVG stay vectors)
    art = None
    if vector and spec.format in ("pdf", "svg"):
        report.update(dpi=None, source_dpi=None, method="vectors: one filled rectangle per run of dark modules")
    else:
        art = _art_at(source, print_specs.pixels(spec.width_mm, spec.dpi), spec, report)

    # 3. Colour
    report["colour"] = _colour_report(spec, vector, profile)
    report["pure_k"] = vector if spec.cmyk else None  # dark modules on the K plate alone; None: RGB, no plates
    report["icc_profile"] = profile.name if profile else None

    # 4. Write
    if spec.format == "pdf":
        data = _write_pdf(source, art, page, spec, profile)
    elif spec.format == "svg":
        data = _write_svg(source.code, page).encode()
    else:
        data = _write_raster(art, page, spec, vector, profile)

    # 5. Read back from the bytes and verify
    seen, physical = read_back(data, spec.format)
    result = scan.verify(seen, source.content, threshold=threshold)
    report["read_back"] = physical
    report["verified"] = {"passed": result.passed, "scan_probability": result.scan_probability,
                          "reasons": result.reasons, "model": result.model}
    return PrintFile(data, spec.format, result, report)


def _art_at(source: PrintSource, side: int, spec: print_specs.PrintSpec, report: dict) -> Image.Image:
    """The art (or a plain code) as an RGB image of `side` pixels, and how it got there, in `report`."""
    width_in = spec.width_mm / print_specs.MM_PER_INCH
    report["dpi"] = spec.dpi
    report["pixels"] = side
    if source.code is not None:
        report.update(source_dpi=None, method=f"drawn at {side} px, module edges on whole pixels")
        return qr.render_control_image(source.code, size=side, border=QUIET_ZONE)
    image = source.image
    source_dpi = int(max(image.size) / width_in)  # whole dots per inch, rounded down: 768 px at 20 cm is 97
    report["source_dpi"] = source_dpi
    report["source_pixels"] = list(image.size)
    if source.render is not None:
        report["method"] = f"{source.render_method} at {side} px"
        drawn = source.render(side)
        return drawn if drawn.size == (side, side) else drawn.resize((side, side), Image.Resampling.LANCZOS)
    scale = side / max(image.size)
    if scale > 1:
        report["method"] = f"upscaled {scale:.2f}x with Lanczos (Pillow), then verified again"
        if source_dpi < MIN_SOURCE_DPI:
            report["warnings"].append(
                f"The art has {source_dpi:g} pixels per inch at {print_specs.describe_length(spec.width_mm)} (under "
                f"{MIN_SOURCE_DPI}): it was upscaled {scale:.1f}x, so edges will look soft up close. Print it "
                "smaller, or generate it larger.")
    else:
        report["method"] = f"downscaled {1 / scale:.2f}x with Lanczos (Pillow)" if scale < 1 else "as stored"
    if image.size == (side, side):
        return image
    return image.resize((side, side), Image.Resampling.LANCZOS)


def _load_profile(path: str) -> cmyk.Profile:
    try:
        return cmyk.load_profile(path)
    except cmyk.ProfileError as exc:
        raise print_specs.PrintError(str(exc)) from None


def _colour_report(spec: print_specs.PrintSpec, vector: bool, profile: cmyk.Profile | None) -> str:
    if not spec.cmyk:
        return "RGB (sRGB): not separated for print; a print shop converts it to its own CMYK."
    where = "output intent" if spec.format == "pdf" else "embedded"
    if vector:
        named = f"; profile {profile.name} ({where})" if profile else "; no ICC profile named"
        return f"CMYK, modules pure K (0/0/0/100), paper left unprinted{named}"
    return (f"CMYK through the ICC profile {profile.name} (perceptual, {where}): dark modules are the profile's "
            "rich black, not pure K")


def _runs(matrix: np.ndarray) -> list[tuple[int, int, int]]:
    """(row, first column, length) of every horizontal run of dark modules: fewer shapes, no hairline seams."""
    runs = []
    for row, line in enumerate(matrix):
        padded = np.concatenate([[False], line, [False]]).astype(np.int8)
        changes = np.flatnonzero(np.diff(padded))
        runs += [(row, int(start), int(stop - start)) for start, stop in zip(changes[::2], changes[1::2], strict=True)]
    return runs


def _write_pdf(source: PrintSource, art: Image.Image | None, page: print_specs.Geometry, spec: print_specs.PrintSpec,
               profile: cmyk.Profile | None) -> bytes:
    from reportlab import rl_config
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    # Binary streams: reportlab's ASCII85 default makes a file 25 % larger and, without its optional C accelerator,
    # encodes in pure Python (150 s and 4 GB for an 82 cm poster's art at 300 dpi). qart writes PDFs only here.
    rl_config.useA85 = 0
    buffer = io.BytesIO()
    side = page.media_mm * print_specs.PT_PER_MM
    pdf = canvas.Canvas(buffer, pagesize=(side, side), invariant=1, pageCompression=1)
    pdf.setTitle(f"QR code: {source.content}")
    pdf.setSubject(_colour_report(spec, source.code is not None, profile))
    boxes = page.boxes_pt()
    pdf.setBleedBox(boxes["bleed"])
    pdf.setTrimBox(boxes["trim"])
    t = page.trim_origin_mm * print_specs.PT_PER_MM
    w = spec.width_mm * print_specs.PT_PER_MM
    b = spec.bleed_mm * print_specs.PT_PER_MM
    if source.code is not None:
        # Vectors: module rectangles in the trim's coordinates; paper (bleed included) is left unprinted.
        code = source.code
        module = w / (code.size + 2 * QUIET_ZONE)
        if spec.cmyk:
            pdf.setFillColorCMYK(0, 0, 0, 1)
        else:
            pdf.setFillColorRGB(0, 0, 0)
        for row, col, length in _runs(code.matrix):
            x = t + (col + QUIET_ZONE) * module
            y = t + w - (row + QUIET_ZONE + 1) * module
            pdf.rect(x, y, length * module, module, stroke=0, fill=1)
    else:
        bleed_px = print_specs.pixels(spec.bleed_mm, spec.dpi) if spec.bleed_mm else 0
        placed = _extend(art, bleed_px)
        if spec.cmyk:
            placed = cmyk.through_profile(placed, profile)
        pdf.drawImage(ImageReader(placed), t - b, t - b, w + 2 * b, w + 2 * b)
    if spec.crop_marks:
        _pdf_marks(pdf, page, spec.cmyk)
    pdf.showPage()
    pdf.save()
    if spec.cmyk and profile is not None:
        return cmyk.with_output_intent(buffer.getvalue(), profile)
    return buffer.getvalue()


def _pdf_marks(pdf, page: print_specs.Geometry, cmyk: bool) -> None:
    # Registration colour in CMYK (every plate), so the marks show on each separation.
    if cmyk:
        pdf.setStrokeColorCMYK(1, 1, 1, 1)
    else:
        pdf.setStrokeColorRGB(0, 0, 0)
    pdf.setLineWidth(MARK_WIDTH_PT)
    pdf.lines([tuple(v * print_specs.PT_PER_MM for v in line) for line in page.crop_marks_mm()])


def _extend(image: Image.Image, by: int) -> Image.Image:
    """The image grown by `by` pixels on each side, repeating its edge (art running into the bleed)."""
    if by <= 0:
        return image
    return Image.fromarray(np.pad(np.asarray(image), ((by, by), (by, by), (0, 0)), mode="edge"), "RGB")


def _write_raster(art: Image.Image, page: print_specs.Geometry, spec: print_specs.PrintSpec, vector: bool,
                  profile: cmyk.Profile | None) -> bytes:
    bleed_px = print_specs.pixels(spec.bleed_mm, spec.dpi) if spec.bleed_mm else 0
    # A plain code's bleed is paper; art runs into it.
    image = _extend(art, bleed_px) if not vector else _pad(art, bleed_px, (255, 255, 255))
    if spec.crop_marks:
        slug_px = print_specs.pixels(page.slug_mm, spec.dpi)
        image = _pad(image, slug_px, (255, 255, 255))
        draw = ImageDraw.Draw(image)
        media_px = image.width
        line = max(1, round(MARK_WIDTH_PT / 72 * spec.dpi))
        scale = spec.dpi / print_specs.MM_PER_INCH
        for x0, y0, x1, y1 in page.crop_marks_mm():
            # PDF's y runs upwards; an image's downwards.
            draw.line([round(x0 * scale), media_px - round(y0 * scale), round(x1 * scale),
                       media_px - round(y1 * scale)], fill=(0, 0, 0), width=line)
    buffer = io.BytesIO()
    if spec.format == "png":
        # zlib level 3: a 4,800 px art file in 4.4 s where the default level 6 took 15 s, for 10 % more bytes.
        image.save(buffer, format="PNG", dpi=(spec.dpi, spec.dpi), compress_level=3)
        return buffer.getvalue()
    extra = {}
    if spec.cmyk:
        image = cmyk.pure_k(image) if vector else cmyk.through_profile(image, profile)
        if profile is not None:
            extra["icc_profile"] = profile.data
    image.save(buffer, format="TIFF", dpi=(spec.dpi, spec.dpi), compression="tiff_lzw", **extra)
    return buffer.getvalue()


def _pad(image: Image.Image, by: int, colour: tuple[int, int, int]) -> Image.Image:
    if by <= 0:
        return image
    out = Image.new("RGB", (image.width + 2 * by, image.height + 2 * by), colour)
    out.paste(image, (by, by))
    return out


def _write_svg(code: qr.QRCode, page: print_specs.Geometry) -> str:
    """A plain code as SVG in millimetres: the page is the MediaBox, a rect per run of dark modules."""
    side = page.media_mm
    t, w = page.trim_origin_mm, page.width_mm
    module = w / (code.size + 2 * QUIET_ZONE)

    def mm(value: float) -> str:
        return f"{value:.4f}".rstrip("0").rstrip(".")

    rects = "".join(
        f'<rect x="{mm(t + (col + QUIET_ZONE) * module)}" y="{mm(side - t - w + (row + QUIET_ZONE) * module)}" '
        f'width="{mm(length * module)}" height="{mm(module)}"/>'
        for row, col, length in _runs(code.matrix)
    )
    marks = "".join(
        f'<line x1="{mm(x0)}" y1="{mm(side - y0)}" x2="{mm(x1)}" y2="{mm(side - y1)}"/>'
        for x0, y0, x1, y1 in page.crop_marks_mm()
    ) if page.slug_mm else ""
    stroke = mm(MARK_WIDTH_PT / print_specs.PT_PER_MM)
    mark_group = f'<g id="crop-marks" stroke="#000" stroke-width="{stroke}">{marks}</g>' if marks else ""
    trim = f'<rect id="trim" x="{mm(t)}" y="{mm(side - t - w)}" width="{mm(w)}" height="{mm(w)}" fill="#fff"/>'
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{mm(side)}mm" height="{mm(side)}mm" '
        f'viewBox="0 0 {mm(side)} {mm(side)}" shape-rendering="crispEdges">'
        f"<title>QR code: {_escape(code.content)}</title>{trim}"
        f'<g id="modules" fill="#000">{rects}</g>{mark_group}</svg>\n'
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def read_back(data: bytes, format: str) -> tuple[Image.Image, dict]:
    """Decode a print file from its bytes: what the verifier sees, and the physical size the file declares.

    PDFs are rasterised by PDFium (pypdfium2); PNG and TIFF are opened by Pillow (CMYK converted to RGB); SVGs
    written here are parsed (their rects and page size) and drawn, since no SVG renderer is installed.

    Args:
        data: the file's bytes.
        format: one of `print_specs.FORMATS`.

    Returns:
        (image, physical): an RGB image of the whole page, and {"width_mm", "dpi", "mode", ...} as declared.
    """
    if format == "pdf":
        return _read_pdf(data)
    if format == "svg":
        return _read_svg(data)
    with warnings.catch_warnings():
        # A file written here: at most print_specs.MAX_RASTER_SIDE squared (100 M) pixels, past Pillow's warning line
        # (89 M) for pictures from elsewhere, but not a decompression bomb.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(data))
        image.load()
    dpi = image.info.get("dpi", (0, 0))[0]
    physical = {"pixels": list(image.size), "dpi": round(float(dpi), 1), "mode": image.mode,
                "width_mm": round(image.width / float(dpi) * print_specs.MM_PER_INCH, 2) if dpi else None,
                "icc_profile": bool(image.info.get("icc_profile"))}
    return image.convert("RGB"), physical


def _read_pdf(data: bytes) -> tuple[Image.Image, dict]:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        page = document[0]
        width_pt, _ = page.get_size()
        boxes = {"media": list(page.get_mediabox()), "bleed": list(page.get_bleedbox()),
                 "trim": list(page.get_trimbox())}
        image = page.render(scale=READ_BACK_SIDE / width_pt).to_pil().convert("RGB")
    finally:
        document.close()
    trim = boxes["trim"]
    physical = {"boxes_pt": {k: [round(v, 3) for v in box] for k, box in boxes.items()},
                "width_mm": round((trim[2] - trim[0]) / print_specs.PT_PER_MM, 2), "rendered_pixels": list(image.size),
                "output_intents": [intent["identifier"] for intent in cmyk.output_intents(data)]}
    return image, physical


def _read_svg(data: bytes) -> tuple[Image.Image, dict]:
    root = ET.fromstring(data)
    ns = "{http://www.w3.org/2000/svg}"
    side = float(root.get("viewBox").split()[2])
    scale = READ_BACK_SIDE / side
    image = Image.new("RGB", (READ_BACK_SIDE, READ_BACK_SIDE), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    modules = root.find(f"{ns}g[@id='modules']")
    for rect in modules.iter(f"{ns}rect"):
        x, y = float(rect.get("x")) * scale, float(rect.get("y")) * scale
        w, h = float(rect.get("width")) * scale, float(rect.get("height")) * scale
        draw.rectangle((round(x), round(y), round(x + w) - 1, round(y + h) - 1), fill=(0, 0, 0))
    trim = root.find(f"{ns}rect[@id='trim']")
    physical = {"width_mm": round(float(trim.get("width")), 2), "page_mm": side,
                "declared_width": root.get("width")}
    return image, physical
