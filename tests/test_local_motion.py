"""The CPU renderer: eased, smooth motion; exact frame count, fps and size; aspect by crop."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import pytest
from PIL import ImageChops, ImageStat

from reelflow.providers.local_motion import ease_in_out, plan_motion, render_kenburns
from tests.support.files import make_image


def test_easing_starts_and_ends_at_rest() -> None:
    assert ease_in_out(0) == 0 and ease_in_out(1) == 1 and ease_in_out(0.5) == pytest.approx(0.5)
    step = 1e-4
    assert ease_in_out(step) / step < 0.01 and (1 - ease_in_out(1 - step)) / step < 0.01


def test_windows_keep_output_aspect_inside_the_source() -> None:
    for seed in range(20):
        for window in plan_motion(1600, 1000, 480, 640, seed):
            assert window.w / window.h == pytest.approx(480 / 640)
            left, top, right, bottom = window.box()
            assert left >= -1e-6 and top >= -1e-6 and right <= 1600 + 1e-6 and bottom <= 1000 + 1e-6


def test_render_exact_and_smooth(tmp_path: Path) -> None:
    source = make_image(tmp_path / "in.png", (800, 500))
    out = tmp_path / "out.mp4"
    seen: list[int] = []
    render_kenburns(source, out, width=240, height=320, fps=10, frames=20, seed=3,
                    progress=lambda done, total: seen.append(done))
    assert seen == list(range(1, 21))
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and float(stream.average_rate) == 10.0
        frames = [f.to_image().convert("L") for f in container.decode(stream)]
    assert len(frames) == 20 and frames[0].size == (240, 320)
    changes = [ImageStat.Stat(ImageChops.difference(a, b)).mean[0] for a, b in itertools.pairwise(frames)]
    assert max(changes) > 0.5, "the picture must move"
    assert changes[0] < max(changes) and changes[-1] < max(changes), "motion eases in and out"
