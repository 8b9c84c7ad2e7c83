"""Bad input: a specific message, exit code 2, and nothing recorded or stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.cli import run_cli_json
from tests.support.files import file_server, files_under, make_image
from tests.support.settings_env import SetEnv


@pytest.fixture(scope="module")
def good_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image(tmp_path_factory.mktemp("bad") / "ok.png", (200, 150))


def _run_count(home: Path) -> int:
    db = home / "reelflow.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM runs").fetchone()[0]


CASES = {
    "missing file": (["--image", "{missing}"], "image", "file not found"),
    "not an image": (["--image", "{text}"], "image", "not an image in a format reelflow reads"),
    "URL 404": (["--image", "{url404}"], "image", "404"),
    "unknown model": (["--model", "no-such-model"], "model", "unknown video model 'no-such-model'"),
    "negative duration": (["--duration", "-1"], "duration", "out of range"),
    "huge duration": (["--duration", "10000"], "duration", "out of range"),
    "resolution out of range": (["--resolution", "8000x8000"], "resolution", "out of range"),
    "resolution not a size": (["--resolution", "big"], "resolution", "is not a resolution"),
    "fps out of range": (["--fps", "500"], "fps", "out of range"),
    "empty prompt where required": (["--model", "wan-2.5-i2v", "--prompt", " "], "prompt", "must not be empty"),
    "duration not offered": (["--model", "wan-2.5-i2v", "--prompt", "p", "--duration", "7"], "duration",
                             "choose one of: 5, 10"),
    "wan frames not 4n+1": (["--model", "wan-2.2-i2v-comfyui", "--prompt", "p", "--frames", "80"], "frames",
                            "4n+1"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_rejected_cleanly(case: str, good_image: Path, home: Path, tmp_path: Path) -> None:
    extra, field, message = CASES[case]
    text_file = tmp_path / "notes.png"
    text_file.write_text("this is not an image")
    with file_server(tmp_path) as base:
        values = {"missing": str(tmp_path / "nope.png"), "text": str(text_file), "url404": f"{base}/gone.png"}
        args = {"--model": "local-kenburns", "--image": str(good_image), "--prompt": "x"}
        for i in range(0, len(extra), 2):
            args[extra[i]] = extra[i + 1].format(**values)
        runs_before, files_before = _run_count(home), files_under(home / "storage")
        code, result = run_cli_json("run", *[item for pair in args.items() for item in pair])
    assert code == 2, result
    assert result["status"] == "rejected" and result["field"] == field
    assert message in result["error"], result["error"]
    assert _run_count(home) == runs_before
    assert files_under(home / "storage") == files_before


def test_unconfigured_backend_names_what_is_missing(good_image: Path, home: Path) -> None:
    runs_before = _run_count(home)
    code, result = run_cli_json("run", "--model", "wan-2.5-i2v", "--image", str(good_image), "--prompt", "p")
    assert code == 2
    assert "wan-2.5-i2v" in result["error"] and "fal" in result["error"]
    assert _run_count(home) == runs_before


def test_private_urls_refused_unless_allowed(good_image: Path, tmp_path: Path) -> None:
    (tmp_path / "ok.png").write_bytes(good_image.read_bytes())
    with file_server(tmp_path) as base:
        code, result = run_cli_json("run", "--model", "local-kenburns", "--image", f"{base}/ok.png",
                                    "--frames", "2", "--fps", "2", "--resolution", "64x64",
                                    env={"REELFLOW_ALLOW_PRIVATE_URLS": "false"})
    assert code == 2 and result["field"] == "image"
    assert "non-public address" in result["error"]


def test_decompression_bomb_is_refused_without_decoding() -> None:
    import struct
    import zlib

    from reelflow.core.inputs import inspect_image
    from reelflow.errors import SpecError

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    with pytest.raises(SpecError, match="too many pixels") as caught:
        inspect_image(png, "bomb.png")
    assert caught.value.field == "image"


def test_an_image_checked_once_is_checked_again_under_a_lower_pixel_limit(env: SetEnv) -> None:
    from reelflow.core.inputs import inspect_image
    from reelflow.errors import ImageTooLargeError
    from tests.emulators.common.media import png_bytes

    image = png_bytes(size=(40, 30))
    first = inspect_image(image, "a.png")
    again = inspect_image(image, "b.png")  # remembered: not decoded again
    assert (again.width, again.height, again.sha256, again.source) == (40, 30, first.sha256, "b.png")
    env(REELFLOW_MAX_INPUT_PIXELS="1000")
    with pytest.raises(ImageTooLargeError, match="too many pixels"):
        inspect_image(image, "a.png")
