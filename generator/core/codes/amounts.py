"""Sizes in words for the messages people read: "640 KB", "10 MB", "2.5 MB".

The one home of the rule: the core's image checks, the site's upload and request-size refusals (`qartsite.limits`,
`generator.uploads`) and, written again in JavaScript, the generation page's check before sending
(`static/qart/generate.js`) all read a size the same way. No imports at all: the web process's first middleware
imports this module, and the rest of the core would bring numpy and Pillow with it.
"""

from __future__ import annotations


def amount(size: int, extra_digits: int = 0) -> str:
    """`size` bytes in words.

    A whole number drops its ".0" (the cap read "10.0 MB"); a size no upload has (a Content-Length of 10**20) is in
    the largest unit, to the digit ("95367431640625000.0 MB" said nothing).

    Args:
        size: the number of bytes.
        extra_digits: decimals beyond the usual one (MB, GB) or none (KB, TB); `over_cap` asks for them.

    Returns:
        "640 KB", "10 MB", "12.3 MB", "3.5 GB", "90,949,470,177 TB".
    """
    if size >= 2**40:
        return f"{size / 2**40:,.{extra_digits}f} TB"
    unit, name, digits = ((2**30, "GB", 1) if size >= 2**30 else (2**20, "MB", 1) if size >= 2**20
                          else (2**10, "KB", 0))
    text = f"{size / unit:.{digits + extra_digits}f}"
    if "." in text:
        text = text.rstrip("0").removesuffix(".")
    return f"{text} {name}"


def over_cap(size: int, cap: int) -> tuple[str, str]:
    """A size over a cap and the cap, in words that never read the same.

    Rounded alike, a file just over the cap read as the cap ("the file is 10 MB; pictures up to 10 MB are
    accepted"): both get more decimals until they differ ("10.04 MB", "10 MB"), and a size that still reads as the
    cap is said to be over it.

    Args:
        size: the bytes sent, more than `cap`.
        cap: the most bytes accepted.

    Returns:
        (the size in words, the cap in words): ("12 MB", "10 MB"), ("10.04 MB", "10 MB"), ("over 10 MB", "10 MB").
    """
    for extra_digits in (0, 1, 2):
        sent, accepted = amount(size, extra_digits), amount(cap, extra_digits)
        if sent != accepted:
            return sent, accepted
    return f"over {amount(cap)}", amount(cap)
