from __future__ import annotations

import numpy as np

from generator.core.codes import captures, qr


def gray_code() -> np.ndarray:
    return np.asarray(qr.render_control_image(qr.encode("views"), 768).convert("L"))


def test_it_returns_the_image_then_captures_of_rising_severity():
    views = captures.phone_views(gray_code(), count=6, seed=1)
    assert [v.name for v in views] == ["original"] + [f"capture-{i}" for i in range(1, 7)]
    assert views[0].severity == 0 and views[-1].severity == 1
    assert [v.severity for v in views] == sorted(v.severity for v in views)


def test_it_shrinks_captures_to_phone_sizes():
    for view in captures.phone_views(gray_code(), count=6, seed=2)[1:]:
        assert view.gray.dtype == np.uint8 and view.gray.ndim == 2
        assert captures.MIN_SIDE <= view.gray.shape[0] <= captures.MAX_SIDE


def test_it_is_reproducible_per_seed():
    a = captures.phone_views(gray_code(), count=3, seed=9)
    b = captures.phone_views(gray_code(), count=3, seed=9)
    c = captures.phone_views(gray_code(), count=3, seed=10)
    assert all(np.array_equal(x.gray, y.gray) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[2].gray, c[2].gray)


def test_harder_captures_depart_further_from_the_image():
    import cv2

    gray = gray_code()

    def departure(severity: float) -> float:
        total = 0.0
        for seed in range(4):
            view = captures.capture(gray, np.random.default_rng(seed), severity)
            reference = cv2.resize(gray, view.shape[::-1], interpolation=cv2.INTER_AREA)
            total += float(np.abs(view.astype(float) - reference).mean())
        return total / 4

    mild, medium, harsh = departure(0.1), departure(0.5), departure(1.0)
    assert mild < medium < harsh, (mild, medium, harsh)


def test_it_keeps_the_aspect_ratio():
    wide = np.full((300, 900), 255, np.uint8)
    view = captures.capture(wide, np.random.default_rng(1), 0.5)
    assert abs(view.shape[1] / view.shape[0] - 3.0) < 0.05
    assert captures.MIN_SIDE <= view.shape[0] <= captures.MAX_SIDE
