"""How a halftone variant is drawn: the seeds' variants and their ladder, margins raised where the picture leaves no
room, and spots made stronger where a soft, small phone capture would read the picture instead of the bit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from generator.core.codes import grids, qr
from generator.core.engines import halftone_drawing
from tests.generator.core.engines.halftone_captures import SIZE, SOFT, URL, gradient, phone_capture, reads_on


def test_seeds_cycle_through_every_variant():
    described = {halftone_drawing.variant_for_seed(seed).describe() for seed in range(len(halftone_drawing.VARIANTS))}
    assert len(described) == len(halftone_drawing.VARIANTS) == 48
    assert halftone_drawing.variant_for_seed(len(halftone_drawing.VARIANTS) + 2) == halftone_drawing.VARIANTS[2]


def test_it_raises_margins_only_where_the_picture_leaves_no_room():
    n = 21
    mid = halftone_drawing.module_margins(np.full((n, n), 128.0), np.full((n, n), 128.0), 40)
    assert np.array_equal(mid, np.full((n, n), 40.0))  # a flat mid-grey: the variant's own margin
    black = halftone_drawing.module_margins(np.zeros((n, n)), np.zeros((n, n)), 40)
    white = halftone_drawing.module_margins(np.full((n, n), 255.0), np.full((n, n), 255.0), 40)
    assert (black > white).all() and (white > 40).all() and black.max() <= halftone_drawing.MAX_MARGIN
    checker = np.indices((n, n)).sum(axis=0) % 2 * 120.0 + 70  # busy: centres alternate 70 and 190
    assert (halftone_drawing.module_margins(np.full((n, n), 130.0), checker, 40) > 40).all()
    assert halftone_drawing.module_margins(np.zeros((n, n)), np.zeros((n, n)), 136).max() == 136  # top of the ladder


def test_the_ladder_ends_at_large_spots_and_a_full_margin():
    top = halftone_drawing.strongest(halftone_drawing.VARIANTS[0])
    assert top.stronger() is None
    assert top.margin == halftone_drawing.MAX_MARGIN and top.centre == pytest.approx(halftone_drawing.MAX_CENTRE)


def test_small_spots_alone_are_averaged_away_in_such_a_capture(monkeypatch):
    code = qr.encode(URL)
    lay = halftone_drawing.layout(grids.grid_from_code(code, SIZE, 4))
    picture = halftone_drawing.fit_picture(gradient(), SIZE)
    grown, _ = halftone_drawing.render(picture, lay, SOFT)
    monkeypatch.setattr(halftone_drawing, "CAPTURE_BLUR", 0.0)  # the spots as they were: 0.30 everywhere
    small, _ = halftone_drawing.render(picture, lay, SOFT)
    assert reads_on(np.asarray(small.convert("L"))) == {"zxing": True, "wechat": True}  # full size: it reads
    assert reads_on(phone_capture(small, 1.0)) == {"zxing": False, "wechat": False}
    assert reads_on(phone_capture(grown, 1.0)) == {"zxing": True, "wechat": True}


def test_spots_are_made_stronger_only_where_the_picture_disagrees_with_the_bit():
    code = qr.encode(URL)
    grid = grids.grid_from_code(code, SIZE, 4)
    lay = halftone_drawing.layout(grid)
    flat = Image.new("RGB", (100, 100), (150, 150, 150))  # flat: no help, no harm
    picture = halftone_drawing.fit_picture(flat, SIZE)
    luma = np.asarray(picture.convert("L"), np.float64)
    goals = grids.local_threshold(picture, grid) + np.where(grid.matrix, -40.0, 40.0)
    spots, fitted = halftone_drawing.fit_spots(luma, goals, lay, SOFT)
    data = ~grid.function_mask
    assert (spots >= SOFT.centre).all() and (spots <= halftone_drawing.MAX_SPOT).all()
    stronger = np.where(grid.matrix, goals - fitted, fitted - goals)  # margin added, towards each module's bit
    assert (stronger >= 0).all() and (stronger <= halftone_drawing.MAX_EXTRA_MARGIN).all()
    assert (stronger[data] > 0).mean() > 0.5 and (spots[data] > SOFT.centre).any()  # a 0.30 spot alone is lost
    assert (spots[~data] == SOFT.centre).all() and (fitted[~data] == goals[~data]).all()  # function patterns
    # A picture that agrees with every module (the code itself, softened) keeps the variant's spots.
    agreeing = qr.render_control_image(code, SIZE).convert("RGB").filter(ImageFilter.GaussianBlur(1))
    goals = grids.local_threshold(agreeing, grid) + np.where(grid.matrix, -40.0, 40.0)
    spots, fitted = halftone_drawing.fit_spots(np.asarray(agreeing.convert("L"), np.float64), goals, lay, SOFT)
    assert (spots == SOFT.centre).mean() > 0.99 and (fitted == goals).mean() > 0.99  # one edge module of 1089
    image, _ = halftone_drawing.render(picture, lay, SOFT)
    leads = halftone_drawing.capture_leads(np.asarray(image.convert("L"), np.float64), grid)
    # A blurred capture reads every module right (fitted at 6 px a module, judged here at 9.4: nearly all with the
    # full lead to spare).
    assert (leads[data] > 0).all() and (leads[data] >= halftone_drawing.CAPTURE_LEAD).mean() > 0.9
