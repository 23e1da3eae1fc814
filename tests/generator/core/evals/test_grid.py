"""Sweep grids: parsing `name=v1,v2` specs into typed values, the cartesian product, keys and paired seeds."""

from __future__ import annotations

import pytest

from generator.core.evals import grid


def test_it_parses_a_grid_into_typed_values():
    parsed = grid.parse_grid(["conditioning_scale=1.0, 1.3", "steps=20,30", "scheduler=ddim,unipc", "ecc=h,M",
                              "strength=none,0.5"])
    assert parsed == {"conditioning_scale": [1.0, 1.3], "steps": [20, 30], "scheduler": ["ddim", "unipc"],
                      "ecc": ["H", "M"], "strength": [None, 0.5]}
    assert isinstance(parsed["steps"][0], int) and isinstance(parsed["conditioning_scale"][0], float)


@pytest.mark.parametrize(
    "specs, message",
    [
        (["seed=1,2"], "unknown parameter “seed”; choose from conditioning_scale"),
        (["conditioning_scale"], "expected name=value"),
        (["=1"], "expected name=value"),
        (["steps=20,twenty"], "“twenty” is not a whole number"),
        (["guidance_scale=3,x"], "“x” is not a number"),
        (["conditioning_scale=1,1.0"], "1.0 is listed twice"),
        (["steps=20", "steps=30"], "steps is given twice"),
        (["scheduler=fastest"], "“fastest” is not one of ddim"),
        (["style=hearts"], "“hearts” is not one of square, rounded, dots"),
        (["conditioning_scale=1.0,"], "“” is not a number"),
        (["steps=it's\u0000"], "--grid “steps=it's\\u0000”: “it's\\u0000” is not a whole number"),
    ],
)
def test_it_refuses_a_bad_grid_with_one_message(specs, message):
    with pytest.raises(grid.GridError) as exc:
        grid.parse_grid(specs)
    assert message in str(exc.value)


def test_it_parses_fixed_parameters():
    assert grid.parse_params(["steps=2", "size=256", "strength=0.6"]) == {"steps": 2, "size": 256, "strength": 0.6}
    with pytest.raises(grid.GridError, match="--base: steps is given twice"):
        grid.parse_params(["steps=2", "steps=3"])
    with pytest.raises(grid.GridError, match="--base “size=big”: “big” is not a whole number"):
        grid.parse_params(["size=big"])


def test_it_expands_the_cartesian_product_with_canonical_keys():
    configs = grid.expand({"conditioning_scale": [1.0, 1.3], "control_start": [0.0, 0.15, 0.3]})
    assert len(configs) == 6 and configs[0] == {"conditioning_scale": 1.0, "control_start": 0.0}
    assert configs[-1] == {"conditioning_scale": 1.3, "control_start": 0.3}
    assert grid.config_key({"control_start": 0, "conditioning_scale": 1.30}) == \
        "conditioning_scale=1.3, control_start=0"
    assert grid.config_key({"control_start": 0.0, "scheduler": "ddim", "strength": None}) == \
        "control_start=0.0, scheduler=ddim, strength=none"
    assert grid.config_key({"b": 0.1 + 0.2}) == grid.config_key({"b": 0.3}) == "b=0.3"
    assert grid.expand({}) == [{}] and grid.config_key({}) == ""


def test_it_derives_seeds_from_prompt_and_content_only():
    seed = grid.sample_seed("a fox", "Hello")
    assert seed == grid.sample_seed("a fox", "Hello") and 0 <= seed < 2**31
    assert len({seed, grid.sample_seed("a fox", "Hello!"), grid.sample_seed("a fox.", "Hello")}) == 3
