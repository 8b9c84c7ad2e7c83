"""R2 caching against moto's S3 server on 127.0.0.1 behind a fault-injecting proxy, fed by an HTTP source.

A provider URL with its run's key is the pipeline's path (``cache_r2``); files, bytes and known hashes go
to content keys."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections import Counter
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
from reelflow.core.domain import MediaRef
from reelflow.errors import HashNeededError, SourceError, StorageError, TransientSourceError
from reelflow.storage.keys import RunKey, object_key, run_object_key
from reelflow.storage.local import LocalStorage
from reelflow.storage.poster import make_poster
from reelflow.storage.r2 import CACHE_CONTROL, R2Storage
from reelflow.storage.s3_stream import MiB, TransferSettings
from tests.support.s3_server import KEY_ID, SECRET, FaultProxy, SourceServer, moto_server, s3_client

BUCKET = "reelflow-test"
CDN = "https://media.example.com"
PART = 5 * MiB
FAST = TransferSettings(part_size=PART, concurrency=2, source_retry_wait_s=0.05)
UNCHANGED = ("ETag", "LastModified", "ContentLength")


@dataclass
class S3:
    direct: Any
    proxy: FaultProxy

    def uploads(self) -> list[Any]:
        """Multipart uploads still open: none may survive a failed write."""
        return self.direct.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])

    def head(self, key: str) -> dict[str, Any]:
        return self.direct.head_object(Bucket=BUCKET, Key=key)


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
    """Three parts by default: as many as FAST's part buffers (concurrency + 1), so the stream does not fit."""
    data = os.urandom(size)
    return data, hashlib.sha256(data).hexdigest()


def new_run(role: str = "video") -> RunKey:
    return RunKey(uuid.uuid4().hex, role)


def test_run_keys_are_per_run_and_role() -> None:
    run = new_run()
    assert run_object_key(run, "video/mp4") == f"runs/{run.run_id}/video.mp4"
    assert run_object_key(RunKey(run.run_id, "image"), "image/jpeg") == f"runs/{run.run_id}/image.jpg"
    assert run_object_key(RunKey("../..", "video"), "video/mp4") == "runs/%2E%2E%2F%2E%2E/video.mp4"
    assert run_object_key(RunKey("a/b", "video"), "video/mp4") != run_object_key(RunKey("a%2Fb", "video"),
                                                                                 "video/mp4")
    with pytest.raises(ValueError, match="empty"):
        run_object_key(RunKey("", "video"), "video/mp4")


def test_url_with_run_key_streams_to_the_run_key_with_headers(storage: R2Storage, s3: S3,
                                                              source: SourceServer) -> None:
    data, sha = payload()
    url = source.add("/out/clip.mp4?token=abc", data)
    run = new_run()

    stored = storage.put_url(url, content_type="video/mp4", filename="clip été.mp4", run_key=run)

    assert stored.key == f"runs/{run.run_id}/video.mp4" and stored.sha256 == sha and stored.bytes == len(data)
    assert stored.path is None and stored.url == f"{CDN}/{stored.key}"
    head = s3.head(stored.key)
    assert head["ContentType"] == "video/mp4" and head["CacheControl"] == CACHE_CONTROL
    assert head["ContentDisposition"] == (
        "inline; filename=\"clip _t_.mp4\"; filename*=UTF-8''clip%20%C3%A9t%C3%A9.mp4")
    assert head["Metadata"] == {"run-id": run.run_id}
    assert s3.direct.get_object(Bucket=BUCKET, Key=stored.key)["Body"].read() == data
    counts = s3.proxy.counts()
    assert counts["CreateMultipartUpload"] == 1 and counts["UploadPart"] == 3
    assert counts["CopyObject"] == counts["PutObject"] == counts["DeleteObject"] == 0
    assert source.blobs["/out/clip.mp4"].requests == 1 and s3.uploads() == []


def test_same_run_key_is_neither_fetched_nor_uploaded_again(storage: R2Storage, s3: S3,
                                                            source: SourceServer) -> None:
    data, sha = payload()
    url = source.add("/retried.mp4", data)
    run = new_run()
    first = storage.put_url(url, run_key=run)
    before = s3.head(first.key)
    s3.proxy.reset()

    again = storage.put_url(url, run_key=run)

    assert again == first and again.sha256 == sha  # read back from the bucket: the metadata cannot hold it
    assert source.blobs["/retried.mp4"].requests == 1
    assert s3.proxy.counts() == Counter({"HeadObject": 1, "GetObject": 1})
    after = s3.head(first.key)
    assert [after[field] for field in UNCHANGED] == [before[field] for field in UNCHANGED]


def test_another_run_with_the_same_bytes_lands_at_its_own_key(storage: R2Storage, s3: S3,
                                                              source: SourceServer) -> None:
    data, sha = payload()
    url = source.add("/forced.mp4", data)
    first, forced = new_run(), new_run()
    one = storage.put_url(url, run_key=first)
    s3.proxy.reset()

    two = storage.put_url(url, run_key=forced)

    assert two.key == f"runs/{forced.run_id}/video.mp4" != one.key and two.sha256 == one.sha256 == sha
    assert s3.proxy.counts()["UploadPart"] == 3 and source.blobs["/forced.mp4"].requests == 2
    assert s3.head(one.key)["Metadata"] == {"run-id": first.run_id}
    assert s3.head(two.key)["Metadata"] == {"run-id": forced.run_id}
    third = new_run()
    small = storage.put_url(source.add("/short.mp4", b"a short video"), run_key=third)
    assert small.key == f"runs/{third.run_id}/video.mp4" and s3.proxy.counts()["PutObject"] == 1
    assert s3.direct.get_object(Bucket=BUCKET, Key=small.key)["Body"].read() == b"a short video"


def test_local_storage_uses_the_same_keys(storage: R2Storage, source: SourceServer, tmp_path: Path) -> None:
    data, sha = payload(PART + 99)
    url = source.add("/both.mp4", data)
    media = MediaRef(url=url, content_type="video/mp4", filename="both.mp4")
    run = new_run()
    local = LocalStorage(tmp_path / "store")

    in_folder = local.put_media(media, run)
    in_bucket = storage.put_media(media, run)

    assert in_folder.key == in_bucket.key == run_object_key(run, "video/mp4")
    assert in_folder.sha256 == in_bucket.sha256 == sha and Path(str(in_folder.path)).read_bytes() == data
    requests = source.blobs["/both.mp4"].requests
    assert local.put_media(media, run) == in_folder and source.blobs["/both.mp4"].requests == requests
    assert not list((tmp_path / "store" / ".staging").iterdir())
    path = tmp_path / "render.mp4"
    path.write_bytes(data)
    file_media = MediaRef(path=str(path), content_type="video/mp4")
    assert local.put_media(file_media, run).key == storage.put_media(file_media, run).key == object_key(
        sha, "video/mp4")
    assert local.put_media(media).key == storage.put_media(media).key == object_key(sha, "video/mp4")


def test_stream_that_fits_the_buffers_goes_to_its_content_key(storage: R2Storage, s3: S3,
                                                              source: SourceServer) -> None:
    data, sha = payload(PART + 1234)
    url = source.add("/fits.mp4", data)
    stored = storage.put_url(url)
    counts = s3.proxy.counts()
    assert stored.key == object_key(sha, "video/mp4") and source.blobs["/fits.mp4"].requests == 1
    assert counts["UploadPart"] == 2 and counts["CopyObject"] == 0 and counts["DeleteObject"] == 0
    assert s3.head(stored.key)["Metadata"] == {"sha256": sha}
    s3.proxy.reset()
    assert storage.put_url(url) == stored
    assert set(s3.proxy.counts()) == {"HeadObject"}


def test_long_url_without_run_key_is_hashed_then_uploaded_once(storage: R2Storage, s3: S3,
                                                               source: SourceServer) -> None:
    data, sha = payload()
    url = source.add("/again.mp4", data)

    first = storage.put_url(url, filename="again.mp4")

    assert first.key == object_key(sha, "video/mp4") and first.sha256 == sha
    assert source.blobs["/again.mp4"].requests == 2  # once to hash it, once to upload it: no copy, no temp file
    counts = s3.proxy.counts()
    assert counts["UploadPart"] == 3 and counts["CopyObject"] == counts["PutObject"] == 0
    head = s3.head(first.key)
    assert head["Metadata"] == {"sha256": sha} and head["ContentDisposition"].startswith('inline; filename="again')
    s3.proxy.reset()

    assert storage.put_url(url) == first
    assert s3.proxy.counts() == Counter({"HeadObject": 1}) and source.blobs["/again.mp4"].requests == 3
    s3.proxy.reset()

    assert storage.put_url(url, expected_sha256=sha) == first
    assert s3.proxy.counts() == Counter({"HeadObject": 1}) and source.blobs["/again.mp4"].requests == 3


def test_long_stream_without_hash_or_run_key_is_refused(storage: R2Storage, s3: S3) -> None:
    data, sha = payload()
    with pytest.raises(HashNeededError, match=sha):
        storage.put_stream(iter([data[:PART], data[PART:]]), "video/mp4")
    assert sum(s3.proxy.counts().values()) == 0
    run = new_run()
    stored = storage.put_stream(iter([data[:PART], data[PART:]]), "video/mp4", run_key=run)
    assert stored.key == run_object_key(run, "video/mp4") and stored.sha256 == sha


def test_put_file_hashes_first_and_uploads_once(storage: R2Storage, s3: S3, tmp_path: Path) -> None:
    data, _ = payload()
    path = tmp_path / "render.mp4"
    path.write_bytes(data)

    stored = storage.put_file(path, "video/mp4")
    counts = s3.proxy.counts()
    assert counts["UploadPart"] == 3 and counts["CopyObject"] == 0 and counts["PutObject"] == 0
    assert s3.head(stored.key)["ContentDisposition"].startswith('inline; filename="render.mp4"')
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


def test_public_url_and_prefix(s3: S3, source: SourceServer) -> None:
    block = block_for(s3)
    block.s3_bucket.bucket_folder = "outputs/"
    storage = block.storage(FAST)
    stored = storage.put_bytes(b"prefixed", "video/mp4")
    assert stored.url == f"{CDN}/outputs/{stored.key}"
    assert s3.head(f"outputs/{stored.key}")["ContentLength"] == 8
    run = new_run()
    again = storage.put_url(source.add("/prefixed.mp4", b"prefixed run output"), run_key=run)
    assert again.key == run_object_key(run, "video/mp4") and again.url == f"{CDN}/outputs/{again.key}"
    assert s3.head(f"outputs/{again.key}")["Metadata"] == {"run-id": run.run_id}
    assert storage.put_url(again.url, run_key=run) == again  # found by its HEAD; the URL is not even opened


def test_source_drop_aborts_and_leaves_nothing(storage: R2Storage, s3: S3, source: SourceServer) -> None:
    data, _ = payload(4 * PART + 1234)
    url = source.add("/dropping.mp4", data, drop_after=3 * PART + 100)
    run = new_run()

    with pytest.raises(SourceError, match="failed after"):
        storage.put_url(url, run_key=run)

    assert source.blobs["/dropping.mp4"].requests == FAST.source_attempts
    counts = s3.proxy.counts()
    assert counts["CreateMultipartUpload"] == counts["AbortMultipartUpload"] == FAST.source_attempts
    assert counts["CompleteMultipartUpload"] == 0
    assert s3.uploads() == [] and not storage.exists(run_object_key(run, "video/mp4"))


def test_source_drop_once_is_retried(storage: R2Storage, s3: S3, source: SourceServer) -> None:
    data, sha = payload()
    url = source.add("/flaky.mp4", data, drop_after=PART * 2, drops=1)
    run = new_run()
    stored = storage.put_url(url, run_key=run)
    assert stored.sha256 == sha and stored.key == run_object_key(run, "video/mp4")
    assert source.blobs["/flaky.mp4"].requests == 2 and s3.uploads() == []
    assert s3.direct.get_object(Bucket=BUCKET, Key=stored.key)["Body"].read() == data


def test_source_auth_headers_and_http_errors(storage: R2Storage, source: SourceServer) -> None:
    url = source.add("/view?filename=a.mp4", b"video", require={"Authorization": "Bearer tok"})
    assert storage.put_url(url, {"Authorization": "Bearer tok"}, run_key=new_run()).bytes == 5
    with pytest.raises(SourceError, match="answered HTTP 401") as failure:
        storage.put_url(url, run_key=new_run())
    assert not isinstance(failure.value, TransientSourceError)


def test_s3_500_on_a_part_is_retried(storage: R2Storage, s3: S3, source: SourceServer) -> None:
    data, sha = payload()
    s3.proxy.fail("UploadPart", times=2)
    stored = storage.put_url(source.add("/retry.mp4", data), run_key=new_run())
    assert stored.sha256 == sha and s3.proxy.counts()["UploadPart"] == 3 + 2
    assert s3.direct.get_object(Bucket=BUCKET, Key=stored.key)["Body"].read() == data


def test_persistent_s3_500_aborts_with_s3_text(storage: R2Storage, s3: S3, source: SourceServer) -> None:
    data, _ = payload()
    s3.proxy.fail("UploadPart", times=10_000)
    run = new_run()
    with pytest.raises(StorageError, match=r"UploadPart .*InternalError.*We encountered an internal error"):
        storage.put_url(source.add("/broken.mp4", data), run_key=run)
    assert s3.proxy.counts()["AbortMultipartUpload"] == 1 and s3.proxy.counts()["CompleteMultipartUpload"] == 0
    assert s3.uploads() == [] and not storage.exists(run_object_key(run, "video/mp4"))


def test_failed_upload_stops_reading_its_source(storage: R2Storage, s3: S3) -> None:
    total, pulled = 20, 0

    def chunks() -> Iterator[bytes]:
        nonlocal pulled
        block = bytes(PART)
        for _ in range(total):
            pulled += 1
            yield block

    s3.proxy.fail("UploadPart", times=10_000)
    run = new_run()
    with pytest.raises(StorageError, match="UploadPart"):
        storage.put_stream(chunks(), "video/mp4", run_key=run)
    assert pulled <= FAST.concurrency + 2 < total  # the parts in flight, one waiting, one being read: no more
    assert s3.proxy.counts()["AbortMultipartUpload"] == 1 and s3.proxy.counts()["CompleteMultipartUpload"] == 0
    assert s3.uploads() == [] and not storage.exists(run_object_key(run, "video/mp4"))


def test_wrong_expected_hash_never_lands(storage: R2Storage, s3: S3, source: SourceServer) -> None:
    data, _ = payload()
    wrong = "f" * 64
    with pytest.raises(StorageError, match="does not match"):
        storage.put_url(source.add("/liar.mp4", data), expected_sha256=wrong)
    assert s3.proxy.counts()["AbortMultipartUpload"] == 1
    assert s3.uploads() == [] and not storage.exists(object_key(wrong, "video/mp4"))


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
