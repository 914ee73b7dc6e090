"""Where the targeted map attack aims: a click or a typed region, resolved against a clip's ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from avdemo.data.truth import GroundTruth
from avdemo.lab.targets import CLICK_SIDE, region_at, resolve_region, silent_objects

SIZE = 200


@pytest.fixture
def truth() -> GroundTruth:
    """Two frames: the sounding violin on the left, a silent cello on the right that is hidden in frame 1."""
    box = np.array([[10, 50, 90, 150]] * 2, np.float32)
    cello = np.array([[[120, 40, 190, 160]], [[np.nan] * 4]], np.float32)
    return GroundTruth("violin", box, cello, ["cello"])


def test_a_click_on_a_silent_object_names_it_and_elsewhere_makes_a_square(truth):
    assert silent_objects(truth) == ["silent cello"] and silent_objects(None) == []
    assert region_at(150, 100, SIZE, truth) == "silent cello"
    x0, y0, x1, y1 = (float(v) for v in region_at(50, 100, SIZE, truth).split(","))
    assert (x0 + x1) / 2 == pytest.approx(0.25, abs=0.01) and (y0 + y1) / 2 == pytest.approx(0.5, abs=0.01)
    assert x1 - x0 == pytest.approx(CLICK_SIDE, abs=0.01)
    corner = [float(v) for v in region_at(0, 0, SIZE, None).split(",")]  # kept inside the frame
    assert corner == pytest.approx([0, 0, CLICK_SIDE, CLICK_SIDE], abs=0.01)


def test_an_object_resolves_to_its_box_per_frame_and_a_rectangle_to_one_box(truth):
    boxes, name = resolve_region("silent cello", truth, SIZE)
    assert name == "the silent cello"
    assert np.allclose(boxes, [(0.6, 0.2, 0.95, 0.8)] * 2)  # the hidden frame borrows the nearest box
    boxes, name = resolve_region("(0.1, 0.2, 0.5, 0.6)", truth, SIZE)
    assert boxes == ((0.1, 0.2, 0.5, 0.6),) and name == "the target region"


@pytest.mark.parametrize("text, message", [("", "needs a target region"), ("silent piano", "no silent piano"),
                                           ("0.5, 0.5, 0.2, 0.9", "x0 < x1"), ("left half", "needs a target region")])
def test_bad_regions_say_what_is_accepted(truth, text, message):
    with pytest.raises(ValueError, match=message):
        resolve_region(text, truth, SIZE)
