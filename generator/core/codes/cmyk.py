"""CMYK for print files: the ICC profile, plain codes in pure K, art through the profile, and the PDF's output intent.

Plain Python (Pillow's LittleCMS, pikepdf), importable without Django; `printing` calls it.

    profile = cmyk.load_profile("/usr/share/color/icc/ghostscript/default_cmyk.icc")
    cmyk.pure_k(code_image)           # dark modules 0/0/0/100, paper unprinted
    cmyk.through_profile(art, profile)  # perceptual sRGB -> the profile's CMYK
    cmyk.with_output_intent(pdf_bytes, profile)

Why pure K for codes: a rich black (C, M and Y under the K) misregisters on press into coloured fringes around
every module, which a phone's binariser reads as grey; one plate cannot misregister against itself. Art is
converted as a whole, so its dark modules become whatever the profile makes of dark RGB (a rich black): the
report says so rather than pretend otherwise.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms


def _pikepdf():
    """pikepdf, imported on first use (only PDFs need it) without its INFO line on import ("C++ to Python logger
    bridge initialized"), which a site logging INFO would print on every `qart_print`'s stderr."""
    logging.getLogger("pikepdf._core").setLevel(logging.WARNING)
    import pikepdf

    return pikepdf


class ProfileError(ValueError):
    """The ICC profile cannot be used; the message is meant for a person."""


@dataclass(frozen=True)
class Profile:
    """A CMYK ICC profile: its path, bytes, parsed form and its own description.

    Attributes:
        path: where it was read from.
        data: the file's bytes (embedded in TIFFs and in a PDF's output intent).
        icc: Pillow's parsed profile, for conversions.
        name: the profile's own description, e.g. "Artifex CMYK SWOP Profile".
    """

    path: str
    data: bytes
    icc: ImageCms.ImageCmsProfile
    name: str


def load_profile(path: str) -> Profile:
    """Read a CMYK ICC profile.

    Args:
        path (`str`): the profile's file.

    Returns:
        A `Profile`.

    Raises:
        ProfileError: the file is missing, not an ICC profile, or not a CMYK one.
    """
    try:
        with open(path, "rb") as stream:
            data = stream.read()
        icc = ImageCms.ImageCmsProfile(io.BytesIO(data))
    except (OSError, ImageCms.PyCMSError) as exc:
        raise ProfileError(f"The CMYK profile {path} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    if icc.profile.xcolor_space.strip() != "CMYK":
        raise ProfileError(f"The profile {path} is {icc.profile.xcolor_space.strip()}, not CMYK.")
    return Profile(path, data, icc, ImageCms.getProfileDescription(icc).strip())


def pure_k(image: Image.Image) -> Image.Image:
    """A black-and-white code as CMYK with only K: dark modules 0/0/0/100, light ones unprinted."""
    k = 255 - np.asarray(image.convert("L"))
    zeros = np.zeros_like(k)
    return Image.fromarray(np.dstack([zeros, zeros, zeros, k]), "CMYK")


def through_profile(image: Image.Image, profile: Profile) -> Image.Image:
    """Art (sRGB) converted to the profile's CMYK with the perceptual intent."""
    return ImageCms.profileToProfile(image.convert("RGB"), ImageCms.createProfile("sRGB"), profile.icc,
                                     outputMode="CMYK", renderingIntent=ImageCms.Intent.PERCEPTUAL)


def with_output_intent(pdf: bytes, profile: Profile) -> bytes:
    """The PDF with a PDF/X-style output intent naming `profile` and embedding it as the destination profile.

    The output intent tells a RIP (and preflight tools such as Acrobat's) which press condition the DeviceCMYK
    values were separated for; without one, a print shop has to guess. This does not claim PDF/X conformance
    (no GTS_PDFXVersion): reportlab's files lack some of what PDF/X demands (e.g. a trapped flag in the info).

    Args:
        pdf (`bytes`): a PDF whose colours are DeviceCMYK.
        profile (`Profile`): the CMYK profile they were separated through.

    Returns:
        The PDF's bytes with `/OutputIntents` in its catalog.
    """
    pikepdf = _pikepdf()
    with pikepdf.open(io.BytesIO(pdf)) as document:
        icc = document.make_stream(profile.data)
        icc.N = 4
        icc.Alternate = pikepdf.Name.DeviceCMYK
        intent = pikepdf.Dictionary(
            Type=pikepdf.Name.OutputIntent, S=pikepdf.Name.GTS_PDFX,
            OutputConditionIdentifier=pikepdf.String(profile.name), OutputCondition=pikepdf.String(profile.name),
            Info=pikepdf.String(profile.name), DestOutputProfile=icc,
        )
        document.Root.OutputIntents = pikepdf.Array([document.make_indirect(intent)])
        out = io.BytesIO()
        # Same input, same bytes: a print file's hash names it in caches and in the print shop's mail.
        document.save(out, deterministic_id=True)
    return out.getvalue()


def output_intents(pdf: bytes) -> list[dict]:
    """The output intents a PDF declares: [{"subtype", "identifier", "profile_bytes", "profile_components"}]."""
    pikepdf = _pikepdf()
    found = []
    with pikepdf.open(io.BytesIO(pdf)) as document:
        for intent in document.Root.get("/OutputIntents", []):
            stream = intent.get("/DestOutputProfile")
            found.append({
                "subtype": str(intent.get("/S", "")).lstrip("/"),
                "identifier": str(intent.get("/OutputConditionIdentifier", "")),
                "profile_bytes": len(stream.read_bytes()) if stream is not None else 0,
                "profile_components": int(stream.get("/N", 0)) if stream is not None else 0,
            })
    return found
