from __future__ import annotations

import pytest
from PIL import Image

from generator.core.engines import aesthetics


def test_the_head_matches_laions_published_layout():
    keys = set(aesthetics.build_head().state_dict())
    assert keys == {f"{i}.{p}" for i in (0, 2, 4, 6, 7) for p in ("weight", "bias")}
    assert aesthetics.build_head()[0].in_features == aesthetics.EMBEDDING_SIZE == 768


def test_it_loads_a_head_saved_with_torch_save(tmp_path, tiny_spec):
    import torch

    head = aesthetics.build_head()
    torch.save({f"layers.{k}": v for k, v in head.state_dict().items()}, tmp_path / "head.pth")
    state = aesthetics.load_head_state(tmp_path / "head.pth")
    assert set(state) == set(head.state_dict())
    predictor = aesthetics.load_predictor(tiny_spec.aesthetic_clip, str(tmp_path / "head.pth"))
    assert len(predictor.score([Image.new("RGB", (64, 64), "red")])) == 1


def test_it_scores_a_batch_in_order_and_deterministically(tiny_engine):
    predictor = tiny_engine.aesthetic
    red, noise = Image.new("RGB", (300, 200), (220, 20, 20)), Image.effect_noise((256, 256), 60).convert("RGB")
    scores = predictor.score([red, noise, red])
    assert len(scores) == 3
    assert scores[0] == scores[2] and scores[0] != scores[1]
    assert predictor.score([noise]) == [scores[1]]
    assert predictor.score([]) == []


def test_missing_clip_weights_raise_a_clear_error(tmp_path):
    with pytest.raises(OSError):
        aesthetics.load_predictor(str(tmp_path / "no-clip"), str(tmp_path / "head.pth"))


@pytest.mark.parametrize("size", [(768, 768), (300, 200), (150, 180)])
def test_its_preprocessing_is_clips_own_within_one_level(tiny_engine, size):
    # CLIP's preprocessing as its processor does it with PIL: shorter side to size (bicubic), centre crop,
    # normalise. The predictor does it with torch on its device; one level of 0-255 apart at most
    import numpy as np

    predictor = tiny_engine.aesthetic
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    side = predictor.image_size
    scale = side / min(size)
    resized = image.resize((max(side, round(size[0] * scale)), max(side, round(size[1] * scale))),
                           Image.Resampling.BICUBIC)
    left, top = (resized.width - side) // 2, (resized.height - side) // 2
    crop = np.asarray(resized.crop((left, top, left + side, top + side)), np.float32) / 255.0
    std = np.array(aesthetics.CLIP_STD, np.float32)
    expected = ((crop - np.array(aesthetics.CLIP_MEAN, np.float32)) / std).transpose(2, 0, 1)
    made = predictor._preprocess(image).cpu().numpy()
    assert made.shape == expected.shape == (3, side, side)
    levels = np.abs(made - expected) * std[:, None, None] * 255
    assert levels.max() <= 1.0 + 1e-3 and levels.mean() < 0.5
