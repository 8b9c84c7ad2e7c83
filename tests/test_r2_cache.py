"""R2 caching against moto's S3 server on 127.0.0.1 behind a fault-injecting proxy, fed by an HTTP source."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from PIL import Image
from prefect_aws import AwsClientParameters

from blocks.r2_storage import R2Bucket
from reelflow.domain import MediaRef
from reelflow.storage.keys import object_key
from reelflow.storage.poster import make_poster
from reelflow.storage.r2 import CACHE_CONTROL, R2Storage
from reelflow.storage.s3_stream import MiB, StorageError, TransferSettings
from reelflow.storage.source import SourceError
from tests.s3server import KEY_ID, SECRET, FaultProxy, SourceServer, moto_server, s3_client

BUCKET = "reelflow-test"
CDN = "https://media.example.com"
PART = 5 * MiB
FAST = TransferSettings(part_size=PART, concurrency=2, source_retry_wait_s=0.05)


@dataclass
class S3:
    direct: Any
    proxy: FaultProxy

    def leftovers(self) -> tuple[list[Any], list[Any]]:
        uploads = self.direct.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        staged = self.direct.list_objects_v2(Bucket=BUCKET, Prefix="staging/").get("Contents", [])
        return uploads, staged


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    with moto_server() as endpoint:
        direct = s3_client(endpoint)
        direct.create_bucket(Bucket=BUCKET)
        proxy = FaultProxy(endpoint).start()
        yield S3(direct, proxy)
        proxy.stop()


@pytest.fixture(scope="module")
def source() -> Iterator[SourceServer]:
    server = SourceServer().start()
    yield server
    server.stop()


def block_for(s3: S3, **fields: Any) -> R2Bucket:
    block = R2Bucket.for_s3_compatible(s3.proxy.url, BUCKET, KEY_ID, SECRET, public_base_url=CDN)
    block.s3_bucket.credentials.aws_client_parameters = AwsClientParameters(
        endpoint_url=s3.proxy.url, config={"retries": {"mode": "standard", "total_max_attempts": 3}})
    return block.model_copy(update=fields)


@pytest.fixture()
def storage(s3: S3) -> R2Storage:
    s3.proxy.reset()
    return block_for(s3).storage(FAST)


def payload(size: int = 2 * PART + 1234) -> tuple[bytes, str]:
    """Three parts by default: more than FAST's two part buffers, so a URL goes through staging."""
    data = os.urandom(size)
    return data, hashlib.sha256(data).hexdigest()


def test_put_url_streams_multipart_and_sets_headers(storage: R2Storage, s3: S3, source: SourceServer) -> None:
    data, sha = payload()
    url = source.add("/out/clip.mp4?token=abc", data)

    stored = storage.put_url(url, content_type="video/mp4", filename="clip été.mp4")

    assert stored.key == object_key(sha, "video/mp4") and stored.sha256 == sha and stored.bytes == len(data)
    assert stored.path is None and stored.url == f"{CDN}/{stored.key}"
    head = s3.direct.head_object(Bucket=BUCKET, Key=stored.key)
    assert head["ContentType"] == "video/mp4" and head["CacheControl"] == CACHE_CONTROL
    assert head["ContentDisposition"] == (
        "inline; filename=\"clip _t_.mp4\"; filename*=UTF-8''clip%20%C3%A9t%C3%A9.mp4")
    assert head["Metadata"] == {"sha256": sha}
    assert s3.direct.get_object(Bucket=BUCKET, Key=stored.key)["Body"].read() == data
    counts = s3.proxy.counts()
    assert counts["UploadPart"] == 3 and counts["CopyObject"] == 1 and counts["DeleteObject"] == 1
    assert s3.leftovers() == ([], [])


def test_stream_that_fits_the_buffers_skips_staging(storage: R2Storage, s3: S3, source: SourceServer) -> None:
    data, sha = payload(PART + 1234)
    url = source.add("/fits.mp4", data)
    stored = storage.put_url(url)
    counts = s3.proxy.counts()
    assert counts["UploadPart"] == 2 and counts["CopyObject"] == 0 and counts["DeleteObject"] == 0
    assert s3.direct.head_object(Bucket=BUCKET, Key=stored.key)["Metadata"] == {"sha256": sha}
    s3.proxy.reset()
    assert storage.put_url(url) == stored
    assert set(s3.proxy.counts()) == {"HeadObject"}


def test_same_content_is_not_uploaded_twice(storage: R2Storage, s3: S3, source: SourceServer) -> None:
    data, sha = payload()
    url = source.add("/again.mp4", data)
    first = storage.put_url(url)
    s3.proxy.reset()

    assert storage.put_url(url) == first
    assert s3.proxy.counts()["CopyObject"] == 0 and s3.leftovers() == ([], [])
    s3.proxy.reset()

    assert storage.put_url(url, expected_sha256=sha) == first
    assert set(s3.proxy.counts()) == {"HeadObject"}


def test_put_file_hashes_first_and_uploads_once(storage: R2Storage, s3: S3, tmp_path: Path) -> None:
    data, _ = payload()
    path = tmp_path / "render.mp4"
    path.write_bytes(data)

    stored = storage.put_file(path, "video/mp4")
    counts = s3.proxy.counts()
    assert counts["UploadPart"] == 3 and counts["CopyObject"] == 0 and counts["PutObject"] == 0
    assert s3.direct.head_object(Bucket=BUCKET, Key=stored.key)["ContentDisposition"].startswith(
        'inline; filename="render.mp4"')
    s3.proxy.reset()

    assert storage.put_file(path, "video/mp4") == stored
    assert set(s3.proxy.counts()) == {"HeadObject"}
    assert storage.exists(stored.key) and not storage.exists(object_key("0" * 64, "video/mp4"))


def test_small_bytes_single_put_and_dedup(storage: R2Storage, s3: S3) -> None:
    stored = storage.put_bytes(b"poster", "image/jpeg", "poster.jpg")
    assert stored.key.startswith("images/") and s3.proxy.counts()["PutObject"] == 1
    s3.proxy.reset()
    assert storage.put_bytes(b"poster", "image/jpeg") == stored
    assert set(s3.proxy.counts()) == {"HeadObject"}


def test_presigned_url_is_fetchable(s3: S3) -> None:
    storage = block_for(s3, presign=True, presign_expiry_s=600).storage(FAST)
    stored = storage.put_bytes(b"private bytes", "video/mp4")
    assert "X-Amz-Signature=" in str(stored.url) and "X-Amz-Expires=600" in str(stored.url)
    answer = httpx.get(str(stored.url))
    assert answer.status_code == 200 and answer.content == b"private bytes"


def test_public_url_and_prefix(s3: S3) -> None:
    block = block_for(s3)
    block.s3_bucket.bucket_folder = "outputs/"
    storage = block.storage(FAST)
    stored = storage.put_bytes(b"prefixed", "video/mp4")
    assert stored.url == f"{CDN}/outputs/{stored.key}"
    assert s3.direct.head_object(Bucket=BUCKET, Key=f"outputs/{stored.key}")["ContentLength"] == 8


def test_source_drop_fails_and_leaves_nothing(storage: R2Storage, s3: S3, source: SourceServer) -> None:
    data, sha = payload(4 * PART + 1234)
    url = source.add("/dropping.mp4", data, drop_after=3 * PART + 100)

    with pytest.raises(SourceError, match="failed after"):
        storage.put_url(url)

    assert source.blobs["/dropping.mp4"].requests == FAST.source_attempts
    assert s3.proxy.counts()["AbortMultipartUpload"] == FAST.source_attempts
    assert s3.leftovers() == ([], []) and not storage.exists(object_key(sha, "video/mp4"))


def test_source_drop_once_is_retried(storage: R2Storage, source: SourceServer) -> None:
    data, sha = payload()
    url = source.add("/flaky.mp4", data, drop_after=PART * 2, drops=1)
    assert storage.put_url(url).sha256 == sha
    assert source.blobs["/flaky.mp4"].requests == 2


def test_source_auth_headers_and_http_errors(storage: R2Storage, source: SourceServer) -> None:
    url = source.add("/view?filename=a.mp4", b"video", require={"Authorization": "Bearer tok"})
    assert storage.put_url(url, {"Authorization": "Bearer tok"}).bytes == 5
    with pytest.raises(SourceError, match="answered HTTP 401") as failure:
        storage.put_url(url)
    assert not failure.value.transient


def test_s3_500_on_a_part_is_retried(storage: R2Storage, s3: S3, source: SourceServer) -> None:
    data, sha = payload()
    s3.proxy.fail("UploadPart", times=2)
    stored = storage.put_url(source.add("/retry.mp4", data))
    assert stored.sha256 == sha and s3.proxy.counts()["UploadPart"] == 3 + 2
    assert s3.direct.get_object(Bucket=BUCKET, Key=stored.key)["Body"].read() == data


def test_persistent_s3_500_aborts_with_s3_text(storage: R2Storage, s3: S3, source: SourceServer) -> None:
    data, sha = payload()
    s3.proxy.fail("UploadPart", times=10_000)
    with pytest.raises(StorageError, match=r"UploadPart .*InternalError.*We encountered an internal error"):
        storage.put_url(source.add("/broken.mp4", data))
    assert s3.proxy.counts()["AbortMultipartUpload"] == 1
    assert s3.leftovers() == ([], []) and not storage.exists(object_key(sha, "video/mp4"))


def test_wrong_expected_hash_never_lands(storage: R2Storage, s3: S3, source: SourceServer) -> None:
    data, _ = payload()
    wrong = "f" * 64
    with pytest.raises(StorageError, match="does not match"):
        storage.put_url(source.add("/liar.mp4", data), expected_sha256=wrong)
    assert s3.leftovers() == ([], []) and not storage.exists(object_key(wrong, "video/mp4"))


def test_multipart_copy_above_threshold(s3: S3, source: SourceServer) -> None:
    s3.proxy.reset()
    transfer = TransferSettings(part_size=PART, concurrency=2, multipart_copy_threshold=PART,
                                copy_part_size=PART)
    data, _ = payload()
    stored = block_for(s3).storage(transfer).put_url(source.add("/big.mp4", data))
    assert s3.proxy.counts()["UploadPartCopy"] == 3
    assert s3.direct.get_object(Bucket=BUCKET, Key=stored.key)["Body"].read() == data
    assert s3.direct.head_object(Bucket=BUCKET, Key=stored.key)["CacheControl"] == CACHE_CONTROL


def test_r2_block_endpoint_region_and_secrets() -> None:
    block = R2Bucket.for_r2("acc0123", "media", "AKIDVISIBLE", "very-secret-value", public_base_url=f"{CDN}/")
    credentials = block.s3_bucket.credentials
    assert credentials.aws_client_parameters.endpoint_url == "https://acc0123.r2.cloudflarestorage.com"
    assert credentials.region_name == "auto"
    client = block.client()
    assert client.meta.endpoint_url == "https://acc0123.r2.cloudflarestorage.com"
    assert client.meta.region_name == "auto"
    for shown in (repr(block), str(block), str(block.model_dump()), block.model_dump_json()):
        assert "very-secret-value" not in shown and "**********" in shown
    assert block.storage().url_for("videos/ab/x.mp4") == f"{CDN}/videos/ab/x.mp4"


def test_block_saves_and_loads(s3: S3) -> None:
    block_for(s3).save("r2-cache-test", overwrite=True)
    loaded = R2Bucket.load("r2-cache-test")
    assert loaded.s3_bucket.credentials.aws_secret_access_key.get_secret_value() == SECRET
    assert loaded.storage(FAST).put_bytes(b"loaded", "video/mp4").bytes == 6


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "tiny.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(8))
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for index in range(8):
            frame = av.VideoFrame.from_image(Image.new("RGB", (96, 64), (index * 30, 80, 160)))
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_make_poster_local_and_remote(video: Path, source: SourceServer) -> None:
    local = make_poster(MediaRef(path=str(video), content_type="video/mp4"))
    url = source.add("/comfy/view?filename=tiny.mp4", video, require={"Authorization": "Bearer tok"})
    remote = make_poster(MediaRef(url=url, content_type="video/mp4", headers={"Authorization": "Bearer tok"}))
    assert local[:2] == remote[:2] == b"\xff\xd8"
    with pytest.raises(StorageError, match="no first frame"):
        make_poster(MediaRef(url=url, content_type="video/mp4"))
