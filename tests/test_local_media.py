"""The offline stand-ins (procedural image, Pillow edit, template prompt) and concat / last frame with PyAV."""

from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops, ImageOps

from reelflow.errors import SpecError
from reelflow.providers.local_image import KEYWORDS, edit_image_locally, procedural_image
from reelflow.providers.local_text import enhance_prompt_locally
from reelflow.providers.local_video import concat_videos, last_frame

Colour = tuple[int, int, int]


def write_clip(path: Path, colours: Sequence[Colour], *, size: tuple[int, int] = (160, 120),
               fps: int = 24) -> Path:
    """An H.264 clip with one flat colour per frame (so a blend is easy to see after lossy coding)."""
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.options = {"crf": "0", "preset": "ultrafast"}
        for index, colour in enumerate(colours):
            frame = av.VideoFrame.from_image(Image.new("RGB", size, colour))
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def decode(path: Path) -> tuple[list[Image.Image], Fraction, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_image() for frame in container.decode(stream)]
        rate = Fraction(stream.average_rate)
        return frames, rate, len(frames) / float(rate)


def centre(image: Image.Image) -> Colour:
    return image.convert("RGB").getpixel((image.width // 2, image.height // 2))


def close(a: Colour, b: Colour, tolerance: int = 12) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)


# --- procedural image ---------------------------------------------------------------------------------------

def test_procedural_image_is_a_png_of_the_size_and_the_same_bytes_for_the_same_inputs() -> None:
    first = procedural_image("a lighthouse on a cliff at dusk", 320, 200, 7)
    assert first == procedural_image("a lighthouse on a cliff at dusk", 320, 200, 7)
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(first)) as image:
        assert image.size == (320, 200)
    assert first != procedural_image("a lighthouse on a cliff at dusk", 320, 200, 8)


def test_procedural_image_shapes_come_from_the_seed_and_the_caption_from_the_prompt() -> None:
    one = Image.open(io.BytesIO(procedural_image("waves crash below", 400, 300, 3))).convert("RGB")
    two = Image.open(io.BytesIO(procedural_image("a gull crosses the light", 400, 300, 3))).convert("RGB")
    top, bottom = (0, 0, 400, 150), (0, 240, 400, 300)
    assert ImageChops.difference(one.crop(top), two.crop(top)).getbbox() is None
    assert ImageChops.difference(one.crop(bottom), two.crop(bottom)).getbbox() is not None


def test_procedural_image_refuses_an_impossible_size_naming_the_field() -> None:
    with pytest.raises(SpecError) as caught:
        procedural_image("x", 0, 200, 1)
    assert caught.value.field == "width" and "between 16 and 4096" in str(caught.value)


# --- Pillow edit --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def source_png() -> bytes:
    return procedural_image("an orange cat on a blue sofa", 240, 160, 11)


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def test_edit_black_and_white_makes_every_pixel_grey(source_png: bytes) -> None:
    edited = _open(edit_image_locally(source_png, "Make it black and white", 1))
    red, green, blue = edited.split()
    assert ImageChops.difference(red, green).getbbox() is None
    assert ImageChops.difference(green, blue).getbbox() is None
    assert edited.size == (240, 160)


def test_edit_mirror_then_invert_applies_both_in_order(source_png: bytes) -> None:
    edited = _open(edit_image_locally(source_png, "mirror it, then invert the colours", 1))
    expected = ImageOps.invert(ImageOps.mirror(_open(source_png)))
    assert ImageChops.difference(edited, expected).getbbox() is None


def test_edit_flip_vertically_is_not_also_a_mirror(source_png: bytes) -> None:
    edited = _open(edit_image_locally(source_png, "flip vertically", 1))
    assert ImageChops.difference(edited, ImageOps.flip(_open(source_png))).getbbox() is None


def test_edit_is_deterministic_and_changes_the_image(source_png: bytes) -> None:
    for instruction in ("sepia with a vignette", "warmer and brighter", "more contrast, sharpen", "blur",
                        "posterize", "film grain", "cooler and darker"):
        once = edit_image_locally(source_png, instruction, 5)
        assert once == edit_image_locally(source_png, instruction, 5), instruction
        assert ImageChops.difference(_open(once), _open(source_png)).getbbox() is not None, instruction


def test_edit_with_no_known_keyword_is_a_clear_error_listing_the_keywords(source_png: bytes) -> None:
    with pytest.raises(SpecError) as caught:
        edit_image_locally(source_png, "paint it like van Gogh", 1)
    message = str(caught.value)
    assert caught.value.field == "prompt" and "not an AI model" in message and "van Gogh" in message
    assert all(keyword in message for keyword in ("black and white", "sepia", "blur", "vignette", "mirror"))
    assert len(KEYWORDS) >= 12


def test_edit_of_bytes_that_are_not_an_image_names_the_image() -> None:
    with pytest.raises(SpecError) as caught:
        edit_image_locally(b"not a picture", "blur", 1)
    assert caught.value.field == "image"


# --- template prompt ----------------------------------------------------------------------------------------

def test_template_prompt_is_deterministic_and_keeps_the_subject_and_style() -> None:
    text = enhance_prompt_locally("  a lighthouse   on a cliff. ", style="watercolour")
    assert text == enhance_prompt_locally("a lighthouse on a cliff", style="watercolour")
    assert text.startswith("a lighthouse on a cliff, ") and "watercolour style" in text
    assert "camera" in text and "light" in text
    assert "photorealistic style" in enhance_prompt_locally("a lighthouse")


def test_template_prompt_refuses_an_empty_prompt() -> None:
    with pytest.raises(SpecError) as caught:
        enhance_prompt_locally("   ")
    assert caught.value.field == "prompt"


# --- concat and last frame ----------------------------------------------------------------------------------

def test_concat_without_crossfade_keeps_every_frame_in_order(tmp_path: Path) -> None:
    a = write_clip(tmp_path / "a.mp4", [RED] * 24)
    b = write_clip(tmp_path / "b.mp4", [BLUE] * 12)
    facts = concat_videos([a, b], tmp_path / "out.mp4")
    frames, rate, duration = decode(tmp_path / "out.mp4")
    assert (facts.frames, facts.fps, facts.width, facts.height) == (36, 24.0, 160, 120)
    assert len(frames) == 36 and rate == 24 and duration == pytest.approx(1.5)
    assert facts.duration_s == pytest.approx(1.5)
    assert close(centre(frames[23]), RED) and close(centre(frames[24]), BLUE)


def test_concat_crossfade_blends_and_shortens_by_the_overlap(tmp_path: Path) -> None:
    clips = [write_clip(tmp_path / f"{n}.mp4", [colour] * 24) for n, colour in enumerate((RED, BLUE, GREEN))]
    facts = concat_videos(clips, tmp_path / "out.mp4", crossfade_s=0.25)
    frames, _, duration = decode(tmp_path / "out.mp4")
    overlap = 6  # 0.25 s at 24 fps
    assert facts.frames == len(frames) == 3 * 24 - 2 * overlap
    assert duration == pytest.approx(3.0 - 2 * 0.25)
    assert close(centre(frames[24 - overlap - 1]), RED)
    middle = centre(frames[24 - overlap + overlap // 2])
    assert middle[0] > 60 and middle[2] > 60 and not close(middle, RED, 40) and not close(middle, BLUE, 40)
    assert close(centre(frames[24]), BLUE)
    assert close(centre(frames[-1]), GREEN)


def test_concat_letterboxes_another_aspect_and_resamples_fps_by_time(tmp_path: Path) -> None:
    a = write_clip(tmp_path / "a.mp4", [RED] * 24, size=(160, 120), fps=24)
    wide = write_clip(tmp_path / "wide.mp4", [BLUE] * 12, size=(320, 90), fps=12)
    facts = concat_videos([a, wide], tmp_path / "out.mp4")
    frames, rate, duration = decode(tmp_path / "out.mp4")
    assert rate == 24 and len(frames) == facts.frames == 24 + 24 and duration == pytest.approx(2.0)
    letterboxed = frames[30].convert("RGB")
    assert letterboxed.size == (160, 120)
    assert close(letterboxed.getpixel((80, 60)), BLUE)
    assert close(letterboxed.getpixel((80, 5)), (0, 0, 0)) and close(letterboxed.getpixel((80, 114)), (0, 0, 0))
    assert close(letterboxed.getpixel((3, 60)), BLUE)  # full width: scaled to fit, not cropped or stretched


def test_concat_to_a_given_size_and_fps(tmp_path: Path) -> None:
    a = write_clip(tmp_path / "a.mp4", [RED] * 24)
    facts = concat_videos([a], tmp_path / "out.mp4", size=(320, 240), fps=30)
    frames, rate, duration = decode(tmp_path / "out.mp4")
    assert (facts.width, facts.height) == (320, 240) == frames[0].size
    assert rate == 30 and len(frames) == 30 and duration == pytest.approx(1.0)


def test_concat_writes_the_index_before_the_media_data(tmp_path: Path) -> None:
    a = write_clip(tmp_path / "a.mp4", [RED] * 12)
    concat_videos([a], tmp_path / "out.mp4")
    data = (tmp_path / "out.mp4").read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"


def test_concat_refuses_a_crossfade_longer_than_a_clip(tmp_path: Path) -> None:
    a = write_clip(tmp_path / "a.mp4", [RED] * 24)
    b = write_clip(tmp_path / "b.mp4", [BLUE] * 6)
    with pytest.raises(SpecError) as caught:
        concat_videos([a, b, a], tmp_path / "out.mp4", crossfade_s=0.5)
    assert caught.value.field == "crossfade" and "clip 2" in str(caught.value)
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "out.part.mp4").exists()


def test_concat_refuses_no_clips_and_odd_sizes(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        concat_videos([], tmp_path / "out.mp4")
    assert caught.value.field == "videos"
    a = write_clip(tmp_path / "a.mp4", [RED] * 4)
    with pytest.raises(SpecError) as caught:
        concat_videos([a], tmp_path / "out.mp4", size=(321, 240))
    assert caught.value.field == "width"


def test_last_frame_is_the_true_last_decoded_frame(tmp_path: Path) -> None:
    shades = [(level, level, level) for level in range(10, 250, 8)]
    clip = write_clip(tmp_path / "ramp.mp4", shades)
    frames, _, _ = decode(clip)
    png = last_frame(clip)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = _open(png)
    assert ImageChops.difference(image, frames[-1].convert("RGB")).getbbox() is None
    assert close(centre(image), shades[-1], 3) and not close(centre(image), shades[-2], 3)


# --- the jobs: one store step each, outputs under the run's scratch folder -----------------------------------

def _record_run(run_id: str) -> None:
    from reelflow.store import repo

    repo.create_run(run_id=run_id, idempotency_key=f"media-{run_id}", spec={}, model_id="local-procedural-image",
                    backend="local")


def _media_steps(run_id: str, clips: list[Path]) -> dict[str, object]:
    """The four local jobs as a pipeline flow calls them: each inside its pipeline step (``PIPELINE_STEP``)."""
    import asyncio

    from prefect import flow

    from reelflow.core.domain import ImageParams, MediaRef
    from reelflow.jobs.local_steps import run_concat, run_last_frame, run_local_edit, run_local_image
    from reelflow.jobs.step import PIPELINE_STEP

    @flow(name="media-steps")
    async def media_steps() -> dict[str, object]:
        made: dict[str, object] = {}
        for step, call in (
            ("keyframe", lambda: run_local_image(run_id, "local-procedural-image",
                                                 ImageParams(prompt="a lighthouse at dusk", width=320, height=240,
                                                             seed=3))),
            ("look", lambda: run_local_edit(run_id, "local-pillow-edit", made["keyframe"].media,  # type: ignore[attr-defined]
                                            ImageParams(prompt="black and white", width=320, height=240, seed=1))),
            ("film", lambda: run_concat(run_id, [MediaRef(path=str(c), content_type="video/mp4") for c in clips],
                                        crossfade_s=0.25)),
            ("more[0]", lambda: run_last_frame(run_id, made["film"].media)),  # type: ignore[attr-defined]
        ):
            token = PIPELINE_STEP.set(step)
            try:
                made[step] = await call()
            finally:
                PIPELINE_STEP.reset(token)
        return made

    return asyncio.run(media_steps())


def test_local_jobs_record_their_pipeline_steps_and_write_their_outputs(tmp_path: Path) -> None:
    from tests.support.store import step_row, store_rows

    run_id = "media-jobs-1"
    _record_run(run_id)
    clips = [write_clip(tmp_path / f"{n}.mp4", [colour] * 24) for n, colour in enumerate((RED, BLUE))]
    made = _media_steps(run_id, clips)

    rows = store_rows("SELECT name, status, backend, cost_micro_usd FROM steps WHERE run_id = ? ORDER BY id", run_id)
    assert rows == [("keyframe", "completed", "local", 0), ("look", "completed", "local", 0),
                    ("film", "completed", "local", 0), ("more[0]:last_frame", "completed", "local", 0)]

    keyframe, look, film, frame = (made[k] for k in ("keyframe", "look", "film", "more[0]"))
    key_path = Path(keyframe.media.path)  # type: ignore[attr-defined]
    assert key_path.read_bytes() == procedural_image("a lighthouse at dusk", 320, 240, 3)
    assert key_path.parent.name == run_id and keyframe.role == "image" and keyframe.cost_usd == 0.0  # type: ignore[attr-defined]
    grey = _open(Path(look.media.path).read_bytes())  # type: ignore[attr-defined]
    assert ImageChops.difference(grey.split()[0], grey.split()[2]).getbbox() is None
    assert step_row(run_id, "look")["detail"]["instruction"] == "black and white"

    frames, _, duration = decode(Path(film.media.path))  # type: ignore[attr-defined]
    assert film.frames == len(frames) == 48 - 6 and film.duration_s == pytest.approx(duration)  # type: ignore[attr-defined]
    assert film.media.content_type == "video/mp4" and step_row(run_id, "film")["detail"]["clips"] == 2  # type: ignore[attr-defined]
    last = _open(Path(frame.media.path).read_bytes())  # type: ignore[attr-defined]
    assert ImageChops.difference(last, frames[-1].convert("RGB")).getbbox() is None


def test_a_failed_local_edit_is_a_failed_step_naming_what_it_knows(tmp_path: Path) -> None:
    import asyncio

    from prefect import flow

    from reelflow.core.domain import ImageParams, MediaRef
    from reelflow.jobs.local_steps import run_local_edit
    from tests.support.store import step_row

    run_id = "media-jobs-2"
    _record_run(run_id)
    source = tmp_path / "in.png"
    source.write_bytes(procedural_image("x", 64, 64, 1))

    @flow(name="media-edit-fails")
    async def edit() -> None:
        await run_local_edit(run_id, "local-pillow-edit", MediaRef(path=str(source), content_type="image/png"),
                             ImageParams(prompt="make it look like a Monet", width=64, height=64, seed=1))

    with pytest.raises(SpecError, match="sepia"):
        asyncio.run(edit())
    row = step_row(run_id, "edit_image")
    assert row["status"] == "failed" and "not an AI model" in row["error"] and "vignette" in row["error"]


def test_reelflow_run_makes_its_start_image_offline_with_the_procedural_model() -> None:
    from tests.support.cli import run_cli_json
    from tests.support.store import store_rows

    code, result = run_cli_json("run", "--image-prompt", "a red kite over green hills", "--image-model",
                                "local-procedural-image", "--model", "local-kenburns", "--prompt", "drift",
                                "--duration", "1", "--fps", "8", "--resolution", "160x120", "--seed", "4",
                                "--force")
    assert code == 0, result
    assert result["status"] == "completed" and result["cost_usd"] == 0.0
    image = next(o for o in result["outputs"] if o["role"] == "image")
    assert image["content_type"] == "image/png"
    steps = store_rows("SELECT name, status, backend FROM steps WHERE run_id = ? ORDER BY id", result["run_id"])
    assert steps[0] == ("generate_image", "completed", "local")
    assert [s[1] for s in steps] == ["completed"] * len(steps)


def test_enhance_prompt_with_the_local_template_is_a_free_recorded_step() -> None:
    import asyncio

    from prefect import flow

    from reelflow.jobs.text import run_enhance_prompt
    from tests.support.store import step_row

    run_id = "media-jobs-3"
    _record_run(run_id)

    @flow(name="media-enhance")
    async def enhance() -> str:
        return await run_enhance_prompt(run_id, "local-template-prompt", "a lighthouse", style="noir", seed=2)

    text = asyncio.run(enhance())
    assert text == enhance_prompt_locally("a lighthouse", style="noir")
    row = step_row(run_id, "enhance_prompt")
    assert row["status"] == "completed" and row["cost"] == 0.0 and row["detail"]["text"] == text


def test_concat_and_last_frame_read_clips_from_urls_and_leave_no_downloads(tmp_path: Path) -> None:
    import asyncio
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from prefect import flow

    from reelflow.core.domain import MediaRef, ProviderOutput
    from reelflow.jobs.local_steps import run_concat, run_last_frame, scratch

    served = tmp_path / "served"
    served.mkdir()
    write_clip(served / "a.mp4", [RED] * 12)
    write_clip(served / "b.mp4", [BLUE] * 12)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    run_id = "media-jobs-4"
    _record_run(run_id)

    @flow(name="media-from-urls")
    async def from_urls() -> tuple[ProviderOutput, ProviderOutput]:
        clips = [MediaRef(url=f"{base}/{name}", content_type="video/mp4") for name in ("a.mp4", "b.mp4")]
        joined = await run_concat(run_id, clips)
        return joined, await run_last_frame(run_id, clips[1])

    try:
        joined, frame = asyncio.run(from_urls())
    finally:
        server.shutdown()
    frames, _, _ = decode(Path(joined.media.path or ""))
    assert len(frames) == joined.frames == 24 and close(centre(frames[-1]), BLUE)
    assert close(centre(_open(Path(frame.media.path or "").read_bytes())), BLUE)
    assert sorted(p.suffix for p in scratch(run_id).iterdir()) == [".mp4", ".png"]


def test_concat_stops_when_cancelled_and_leaves_no_file(tmp_path: Path) -> None:
    import threading

    from reelflow.errors import RenderCancelledError

    clips = [write_clip(tmp_path / f"{n}.mp4", [RED] * 24) for n in range(3)]
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        cancel.set()  # asked while the first clip is done: the second is never joined

    with pytest.raises(RenderCancelledError):
        concat_videos(clips, tmp_path / "out.mp4", progress=progress, cancel=cancel)
    assert seen == [1]
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "out.part.mp4").exists()
