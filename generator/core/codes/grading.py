"""Symbol grading: why a QR image will or will not scan, graded the way barcode verifiers grade print.

Plain Python, importable without Django. ISO/IEC 15415 grades a 2-D symbol A (best) to F on a few
measurements, each with its own thresholds; `grade` measures the same things on an image, for the code it
should carry, and says in plain words what falls short:

    grading = grade(gray, "https://qart.example/r/AbC123")
    grading.grades   # {"contrast": "A", "modulation": "A", "fixed_pattern": "F", "grid": "A", "unused_ec": "A"}
    grading.reasons  # [{"code": "finder_damaged", "text": "The top-left finder pattern (...) is damaged."}]

Locating the symbol
-------------------
The text is re-encoded as qr.py encodes it (`qr.encode`: with the level and mask the symbol's format
gives when zxing-cpp read it, else H, Q, M and L in turn with qrcode's own mask choice), so every module's
intended colour is known. Where zxing-cpp locates the symbol (even one it cannot decode) its corners place
the module grid; otherwise the re-encoded matrix is matched against the image, axis-aligned as art made
from a control image is, at every size from half the image's shorter side to all of it; a best match
correlating below `MIN_MATCH` is "not found". The finder and alignment pattern centres are then looked for
within 1.5 modules of where that grid puts them, and the grid is refitted to the ones found. Reflectance is
luminance / 255; a light-on-dark symbol is graded on inverted reflectances.

Grades (A, B, C, D at or past each figure, else F)
--------------------------------------------------
- contrast (15415 symbol contrast): SC = Rmax - Rmin over the module centres of the symbol and its quiet
  zone. A >= 70 %, B >= 55 %, C >= 40 %, D >= 20 %.
- modulation (15415): each module's MOD = 2 |R - GT| / SC against the global threshold GT = (Rmax + Rmin) / 2,
  A >= 0.50, B >= 0.40, C >= 0.30, D >= 0.20, and F on the wrong side of GT. A codeword takes its worst module's
  grade; a Reed-Solomon block the best level L at which its codewords graded below L, counted as errors,
  still leave unused error correction graded L or better (15415's rule: a few poor codewords the error
  correction absorbs do not fail the symbol); the symbol its worst block.
- fixed_pattern (18004's fixed pattern damage for QR, and the quiet zone): each finder with its separator
  (the 8x8 corner block) by its wrong modules, 0 A, 1 B, 2 C, 3 D, 4 or more F; each timing pattern by its
  share of wrong modules, 0 A, <= 7 % B, <= 11 % C, <= 14 % D; the quiet zone by its narrowest clear margin,
  4 modules A (what 18004 asks for), 3 B, 2 C, 1 D, none F. The lowest of these.
- grid (15415 axial and grid non-uniformity): the affine grid through the three measured finder centres;
  axial non-uniformity |X - Y| / mean(X, Y) of its two module pitches, A <= 0.06, B <= 0.08, C <= 0.10, D <= 0.12;
  grid non-uniformity the farthest measured alignment-pattern centre from that grid, in modules, A <= 0.38,
  B <= 0.50, C <= 0.63, D <= 0.75. The lower of the two.
- unused_ec (15415): per Reed-Solomon block UEC = 1 - 2t / (d - p), t its codewords in error, d its error
  correction codewords, p those 18004 keeps for misdecode protection (3 for 1-L, 2 for 1-M and 2-L, 1 for 1-Q,
  1-H and 3-L); the lowest block. A >= 0.62, B >= 0.50, C >= 0.37, D >= 0.25.

Where this departs from 15415: module colours for fixed_pattern and unused_ec are read as a phone reads
them, each module centre against the mean of the 7x7 modules around it (the window `repair` also uses), not
against the one global threshold; art is lit unevenly and phones binarise locally. The finder and timing
thresholds are our reading of 18004's fixed-pattern damage grading (not checked against the standard's text,
which is not to hand), the quiet-zone ones our own.

Reasons, only the ones that apply, worst first: `not_found`; `low_contrast`, `low_modulation`, `grid_distorted`
and `ec_used` for a grade of D or F (below C, the grade most applications accept); `finder_damaged` and
`timing_damaged` for a finder or timing pattern graded D or F; `quiet_zone` for a margin under 4 modules;
`off_centre` where unused error correction grades C or better but read a ninth of a module off the module
centres (as a phone whose grid strays that far reads them) none is left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import qrcode.base

from generator.core.codes import qr, sampling

GRADE_NAMES = ("contrast", "modulation", "fixed_pattern", "grid", "unused_ec")
LETTERS = "FDCBA"  # index = ISO's numeric grade, 0 (F) to 4 (A)
# Thresholds for A, B, C and D (15415 and 18004; see the module docstring).
CONTRAST = (0.70, 0.55, 0.40, 0.20)
MODULATION = (0.50, 0.40, 0.30, 0.20)
UNUSED_EC = (0.62, 0.50, 0.37, 0.25)
AXIAL = (0.06, 0.08, 0.10, 0.12)
GRID = (0.38, 0.50, 0.63, 0.75)
FINDER_ERRORS = (0, 1, 2, 3)
TIMING_ERRORS = (0.0, 0.07, 0.11, 0.14)
QUIET_ZONE = (4, 3, 2, 1)
# Reasons name what grades below C, the grade most applications accept (GS1 asks for C or better).
REASON_BELOW = 2
# ISO 18004's misdecode-protection codewords per (version, level); none elsewhere.
MISDECODE_PROTECTION = {(1, "L"): 3, (1, "M"): 2, (2, "L"): 2, (1, "Q"): 1, (1, "H"): 1, (3, "L"): 1}
FINDER_NAMES = ("top-left", "top-right", "bottom-left")
TIMING_NAMES = ("top", "left")


@dataclass
class Grading:
    """What `grade` found.

    Attributes:
        grades: letter per name in `GRADE_NAMES`, all "F" when the symbol was not found.
        reasons: `{"code", "text"}` for each problem that applies, worst first.
        measures: the figures behind the grades (fractions; margins in modules), empty when not found.
        located_by: "zxing" (its corners), "match" (the re-encoded matrix) or None (not found).
    """

    grades: dict[str, str]
    reasons: list[dict[str, str]] = field(default_factory=list)
    measures: dict[str, float] = field(default_factory=dict)
    located_by: str | None = None


def letter(value, thresholds: tuple[float, ...], higher_is_better: bool = True):
    """ISO's numeric grade, 4 (A) to 0 (F), of `value` (a number or an array) against the limits for A, B, C, D.

    The limits are ordered, so the grade is how many of them the value meets.
    """
    value = np.asarray(value)
    met = sum((value >= limit) if higher_is_better else (value <= limit) for limit in thresholds)
    return int(met) if met.ndim == 0 else met


def grade(gray: np.ndarray, expected: str | None = None, decoded: Sequence[str] = ()) -> Grading:
    """Grade the QR symbol carrying `expected` (or the first decoded text) in `gray`.

    Args:
        gray (`np.ndarray`): the image, 2-D uint8 luminance.
        expected (`str`, *optional*): the exact text the code should carry.
        decoded (`Sequence[str]`, *optional*): texts decoders read; the first is graded when `expected` is None.

    Returns:
        A `Grading`; a symbol that cannot be located grades F everywhere with the reason `not_found`.
    """
    # 1. Check inputs
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("image arrays must be 2-D uint8 luminance")
    text = expected if expected is not None else next(iter(decoded), None)

    # 2. Locate the symbol and sample its modules
    found = sampling.locate(gray, text) if text else None
    if found is None:
        return not_found(expected is not None)
    code, sampled = found.code, found.sampled
    layout = codeword_layout(code.version, code.ecc)

    # 3. Measure and grade
    measures: dict[str, float] = {"module_pixels": round(found.pitch, 3)}
    reasons: list[tuple[int, dict[str, str]]] = []
    grades = {
        "contrast": _contrast(sampled, measures, reasons),
        "modulation": _modulation(sampled, code, layout, measures, reasons),
        "fixed_pattern": _fixed_patterns(sampled, code, measures, reasons),
        "grid": _grid(found.grid, measures, reasons),
        "unused_ec": _unused_ec(sampled, code, layout, measures, reasons),
    }
    reasons.sort(key=lambda pair: pair[0])
    return Grading({k: LETTERS[v] for k, v in grades.items()}, [r for _, r in reasons], measures, found.located_by)


def not_found(expected: bool = True) -> Grading:
    """The grading of an image where the symbol (carrying an expected text, when `expected`) is not found."""
    what = "carrying the expected text " if expected else ""
    return Grading({name: "F" for name in GRADE_NAMES},
                   [_reason("not_found", f"No QR code {what}could be found in the image.")])


def _reason(code: str, text: str) -> dict[str, str]:
    return {"code": code, "text": text}


def _contrast(s: sampling.Sampled, measures: dict, reasons: list) -> int:
    measures["symbol_contrast"] = round(s.contrast, 4)
    g = letter(s.contrast, CONTRAST)
    if g < REASON_BELOW:
        reasons.append((g, _reason("low_contrast", f"The light and dark parts of the code differ too little in "
                                   f"brightness (contrast {_pct(s.contrast)}; 40 % or more is grade C).")))
    return g


def _modulation(s: sampling.Sampled, code: qr.QRCode, layout: CodewordLayout, measures: dict, reasons: list) -> int:
    inner = s.reflectance
    mod = 2 * np.abs(inner - s.threshold) / max(s.contrast, 1e-6)
    right_side = (inner < s.threshold) == code.matrix
    module_grade = np.where(right_side, letter(mod, MODULATION), 0)
    data = layout.codeword >= 0
    measures["modulation_min"] = round(float(np.where(right_side, mod, 0)[data].min()), 4)
    # A codeword is as good as its worst module.
    worst = np.full(layout.codewords, 4)
    np.minimum.at(worst, layout.codeword[data], module_grade[data])
    block_grades = []
    for b, (ec, protected) in enumerate(layout.blocks):
        mine = worst[layout.block == b]
        # The best level L whose codewords graded below L, counted as errors, leave UEC graded L or better.
        uec = (letter(_uec(int((mine < level).sum()), ec, protected), UNUSED_EC) for level in (4, 3, 2, 1))
        block_grades.append(max(min(level, u) for level, u in zip((4, 3, 2, 1), uec, strict=True)))
    g = min(block_grades)
    if g < REASON_BELOW:
        reasons.append((g, _reason("low_modulation", "Some squares of the code are neither clearly light nor clearly "
                                   "dark: a dim, faded or small print may lose them.")))
    return g


def _fixed_patterns(s: sampling.Sampled, code: qr.QRCode, measures: dict, reasons: list) -> int:
    n = code.size
    wrong = s.read_dark != code.matrix
    grades = []
    for name, (r, c) in zip(FINDER_NAMES, ((0, 0), (0, n - 8), (n - 8, 0)), strict=True):
        errors = int(wrong[r : r + 8, c : c + 8].sum())
        measures[f"finder_errors_{name}"] = errors
        grades.append(letter(errors, FINDER_ERRORS, higher_is_better=False))
        if grades[-1] < REASON_BELOW:
            reasons.append((grades[-1], _reason("finder_damaged", f"The {name} finder pattern (the square in that "
                                                "corner that phones find the code by) is damaged.")))
    for name, line in zip(TIMING_NAMES, (wrong[6, 8 : n - 8], wrong[8 : n - 8, 6]), strict=True):
        share = float(line.mean())
        measures[f"timing_errors_{name}"] = round(share, 4)
        grades.append(letter(share, TIMING_ERRORS, higher_is_better=False))
        if grades[-1] < REASON_BELOW:
            reasons.append((grades[-1], _reason("timing_damaged", f"The {name} timing pattern (the dotted line between "
                                                "two corner squares) is damaged.")))
    margin, side = s.quiet_margin()
    measures["quiet_zone_modules"] = margin
    grades.append(letter(margin, QUIET_ZONE))
    if margin < sampling.QUIET:
        where = f"{margin if margin else 'none'} on the {side} side"
        reasons.append((grades[-1], _reason("quiet_zone", "The white border around the code is narrower "
                                            f"than {sampling.QUIET} squares ({where}).")))
    return min(grades)


def _grid(grid: sampling.GridFit, measures: dict, reasons: list) -> int:
    measures["axial_nonuniformity"] = round(grid.axial, 4)
    measures["grid_nonuniformity"] = round(grid.deviation, 4)
    g = min(letter(grid.axial, AXIAL, higher_is_better=False), letter(grid.deviation, GRID, higher_is_better=False))
    if g < REASON_BELOW:
        reasons.append((g, _reason("grid_distorted", "The code is stretched or warped: its squares are not on "
                                   "an even grid.")))
    return g


def _unused_ec(s: sampling.Sampled, code: qr.QRCode, layout: CodewordLayout, measures: dict, reasons: list) -> int:
    unused, errors = unused_ec(s.read_dark, code, layout)
    measures["ec_used"] = round(1 - unused, 4)
    measures["module_errors"] = errors
    # The same from the sharp reading (`sampling.Sampled.sharp_ring`), and the finders a phone's finder scan
    # would find there: margin measures, not graded.
    measures["ec_used_sharp"] = round(1 - unused_ec(s.sharp_dark, code, layout)[0], 4)
    measures["finders_clear"] = finders_clear(s.sharp_ring, code.size)
    # And from the jittered reading (`sampling.Sampled.jitter_rings`): a module counts wrong where any of its
    # readings a little off centre is, as some frame of a phone whose grid is that far off reads it.
    shaky = (s.jitter_dark != code.matrix).any(axis=0)
    jitter_unused = unused_ec(np.where(shaky, ~code.matrix, code.matrix), code, layout)[0]
    measures["ec_used_jitter"] = round(1 - jitter_unused, 4)
    g = letter(unused, UNUSED_EC)
    if g < REASON_BELOW:
        # Measured at each module's centre: a reader averaging whole modules may still read such a code (and the
        # verdict may pass it), so the text states the measure, not that no phone can read it.
        text = ("Read at the centre of each square, more squares come out wrong than the code's built-in error "
                "correction can repair: some phones may still read it, with no room left for a poor print or blur."
                if unused <= 0 else
                f"The code uses {_pct(1 - unused)} of its error correction, leaving little room for a poor print "
                "or a shaky phone.")
        reasons.append((g, _reason("ec_used", text)))
    elif jitter_unused <= 0:
        reasons.append((REASON_BELOW - 1, _reason("off_centre", (
            "Read a little off the centre of each square, as a slightly shaky phone reads it, more squares come "
            "out wrong than the code's built-in error correction can repair: the picture inside the squares "
            "decides, so some phones will fail."))))
    return g


def finders_clear(ring_dark: np.ndarray, n: int) -> int:
    """How many of the three finders show a clean line through their centre each way, light beyond both ends.

    Readers find a code by scanning rows for dark, light, dark, light, dark runs in the ratio 1:1:3:1:1 and
    checking the column through the middle; a dark picture running up to the finder's outer edge stretches the
    outer dark run and hides the finder as surely as damage inside it does. A line counts when all nine modules
    across the finder and one module past each end read as they should (light, the pattern, light).

    Args:
        ring_dark: (n + 8, n + 8) bool, the modules read dark with the 4-module quiet zone around the symbol.
        n: modules across the symbol.

    Returns:
        0-3.
    """
    line = np.array([0, 1, 0, 1, 1, 1, 0, 1, 0], bool)
    clear = 0
    for row, col in ((0, 0), (0, n - 7), (n - 7, 0)):
        top, left = row + sampling.QUIET - 1, col + sampling.QUIET - 1  # one module outside the finder
        block = ring_dark[top : top + 9, left : left + 9]
        across = any((block[i] == line).all() for i in (3, 4, 5))
        down = any((block[:, i] == line).all() for i in (3, 4, 5))
        clear += across and down
    return clear


def unused_ec(read_dark: np.ndarray, code: qr.QRCode, layout: CodewordLayout) -> tuple[float, int]:
    """15415's unused error correction of the worst block, and the data modules read wrong.

    Args:
        read_dark: (n, n) bool, the modules as read (True = dark).
        code: the code they should be.
        layout: `codeword_layout(code.version, code.ecc)`.

    Returns:
        (unused error correction 0-1, count of wrong data modules).
    """
    wrong = (read_dark != code.matrix) & (layout.codeword >= 0)
    bad = np.zeros(layout.codewords, dtype=bool)
    bad[layout.codeword[wrong]] = True
    unused = min(_uec(int(bad[layout.block == b].sum()), ec, p) for b, (ec, p) in enumerate(layout.blocks))
    return unused, int(wrong.sum())


def _uec(errors: int, ec: int, protected: int) -> float:
    """15415's unused error correction of one block with `errors` codewords wrong (no erasures)."""
    return max(0.0, 1.0 - 2 * errors / (ec - protected))


def _pct(fraction: float) -> str:
    return f"{round(100 * fraction)} %"


@dataclass(frozen=True, eq=False)
class CodewordLayout:
    """Where a symbol's codewords lie.

    Attributes:
        codeword: (n, n) int array, the codeword each data module belongs to (in the interleaved stream),
            -1 on function patterns, format and version information and remainder bits.
        block: Reed-Solomon block of each codeword, (codewords,) int array.
        blocks: (error-correction codewords, misdecode-protection codewords) per block.
    """

    codeword: np.ndarray
    block: np.ndarray
    blocks: list[tuple[int, int]]

    @property
    def codewords(self) -> int:
        return len(self.block)


def codeword_layout(version: int, ecc: str) -> CodewordLayout:
    """The codeword layout of a QR symbol, as qrcode places data (`QRCode.map_data`) and interleaves blocks."""
    n = 17 + 4 * version
    # Reserve what qrcode reserves before placing data; the modules left None carry data bits.
    blank = qrcode.QRCode(version=version, error_correction=qr.ECC_LEVELS[ecc], border=0)
    blank.modules_count, blank.modules = n, [[None] * n for _ in range(n)]
    for row, col in ((0, 0), (n - 7, 0), (0, n - 7)):
        blank.setup_position_probe_pattern(row, col)
    blank.setup_position_adjust_pattern()
    blank.setup_timing_pattern()
    blank.setup_type_info(True, 0)
    if version >= 7:
        blank.setup_type_number(True)
    free = np.array([[m is None for m in row] for row in blank.modules])

    rs = qrcode.base.rs_blocks(version, qr.ECC_LEVELS[ecc])
    total = sum(b.total_count for b in rs)
    codeword = np.full((n, n), -1)
    bit, row, step = 0, n - 1, -1
    for col in range(n - 1, 0, -2):
        col = col - 1 if col <= 6 else col  # column 6 is the vertical timing pattern
        while 0 <= row < n:
            for c in (col, col - 1):
                if free[row, c]:
                    codeword[row, c] = bit // 8 if bit < 8 * total else -1
                    bit += 1
            row += step
        row, step = row - step, -step

    # Interleaving: data codewords block by block in turn, then error-correction codewords likewise.
    owner = [b for i in range(max(x.data_count for x in rs)) for b, x in enumerate(rs) if i < x.data_count]
    ec_counts = [x.total_count - x.data_count for x in rs]
    owner += [b for i in range(max(ec_counts)) for b, e in enumerate(ec_counts) if i < e]
    protected = MISDECODE_PROTECTION.get((version, ecc), 0)
    return CodewordLayout(codeword, np.array(owner), [(e, protected) for e in ec_counts])


