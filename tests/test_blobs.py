"""Blob stores: the same behaviour from a local folder and from S3 (moto's real HTTP server)."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from generation.blobs import (
    BlobNotFound,
    LocalBlobStore,
    S3BlobStore,
    open_blob_store,
    validate_key,
)

BUCKET = "dreamloop-test"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4 + b"\x00\r\n\xff"  # every byte value
BAD_KEYS = ["../x", "/abs", "a//b", "a/./b", "with space", "", "a" * 513, "a/", "a/../b"]


@pytest.fixture(scope="module")
def aws_env():
    """Fake credentials and region, and no ~/.aws files, so nothing can reach real AWS."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": "us-east-1",
                            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
                            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials"}.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        patch.delenv("AWS_SESSION_TOKEN", raising=False)
        yield


@pytest.fixture(scope="module")
def moto_url(aws_env):
    """moto's S3 over real HTTP on a free local port, with the test bucket created."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


@pytest.fixture
def s3_store(moto_url, monkeypatch) -> S3BlobStore:
    # Through the factory, so the URL parsing and the endpoint variable are tested too.
    monkeypatch.setenv("DREAMLOOP_S3_ENDPOINT_URL", moto_url)
    return open_blob_store(f"s3://{BUCKET}/tests/{uuid.uuid4().hex}")


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    return request.getfixturevalue("s3_store")


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# -- both stores ----------------------------------------------------------------------------------

def test_put_then_get_returns_the_same_bytes(store):
    store.put("images/7/0.png", PNG, "image/png")
    assert store.get("images/7/0.png") == PNG


def test_put_overwrites_an_existing_key(store):
    store.put("images/7/grid.webp", PNG, "image/webp")
    store.put("images/7/grid.webp", b"retried", "image/webp")
    assert store.get("images/7/grid.webp") == b"retried"


def test_get_of_a_missing_key_names_the_key_and_the_store(store):
    with pytest.raises(BlobNotFound) as caught:
        store.get("images/404/0.png")
    assert isinstance(caught.value, KeyError)
    assert str(caught.value) == f"no blob at key 'images/404/0.png' in {store.describe()}"


def test_exists(store):
    store.put("images/7/1.png", PNG, "image/png")
    assert store.exists("images/7/1.png")
    assert not store.exists("images/7/2.png")
    assert not store.exists("images/7")  # a folder-like prefix is not a blob


def test_delete_prefix_deletes_exactly_one_jobs_blobs(store):
    keys = ["images/1/0.png", "images/1/1.png", "images/1/grid.webp",
            "images/10/0.png", "images/2/0.png", "other/1/0.png"]
    for key in keys:
        store.put(key, PNG, "image/png")
    assert store.delete_prefix("images/1/") == 3  # not images/10/, though it starts with "1"
    assert [key for key in keys if store.exists(key)] == keys[3:]
    assert store.delete_prefix("images/1/") == 0


def test_delete_prefix_without_a_slash_matches_like_s3(store):
    for key in ("images/1/0.png", "images/10/0.png", "images/2/0.png"):
        store.put(key, PNG, "image/png")
    assert store.delete_prefix("images/1") == 2
    assert store.exists("images/2/0.png")


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused_by_every_method(store, key):
    message = re.escape(f"key is {key!r}: ")
    for call in (lambda: store.put(key, PNG, "image/png"), lambda: store.get(key),
                 lambda: store.exists(key)):
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("prefix", ["", "/", "/images/", "../", "images//", "a b/"])
def test_bad_prefixes_are_refused(store, prefix):
    # "" would mean every blob in the store: a deletion request must name what it deletes.
    with pytest.raises(ValueError, match=re.escape(f"prefix is {prefix!r}: ")):
        store.delete_prefix(prefix)


# -- keys -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["images/42/0.png", "images/42/grid.webp", "a", "A-b_c.d/.e",
                                 "x" * 512])
def test_good_keys_pass(key):
    assert validate_key(key) == key


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_name_the_key_and_the_allowed_form(key):
    with pytest.raises(ValueError) as caught:
        validate_key(key)
    message = str(caught.value)
    assert message.startswith(f"key is {key!r}: ")
    assert "letters, digits, '.', '_' and '-'" in message
    assert "at most 512 characters" in message


# -- local folder ---------------------------------------------------------------------------------

def test_local_put_leaves_no_temporary_files(tmp_path):
    store = LocalBlobStore(tmp_path)
    store.put("images/3/0.png", PNG, "image/png")
    store.put("images/3/0.png", b"again", "image/png")
    assert files_under(tmp_path) == ["images/3/0.png"]


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_local_failed_put_keeps_the_old_blob_and_cleans_up(tmp_path, monkeypatch, failing):
    store = LocalBlobStore(tmp_path)
    store.put("images/3/0.png", PNG, "image/png")

    def crash(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(os, failing, crash)
    with pytest.raises(OSError, match="disk gone"):
        store.put("images/3/0.png", b"half", "image/png")
    with pytest.raises(OSError, match="disk gone"):
        store.put("images/3/1.png", b"half", "image/png")
    monkeypatch.undo()
    assert store.get("images/3/0.png") == PNG  # the old content, whole
    assert not store.exists("images/3/1.png")  # a new key: nothing at all, not a partial file
    assert files_under(tmp_path) == ["images/3/0.png"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_local_blobs_get_the_usual_permissions(tmp_path):
    # Temporary files made by mkstemp are 0o600; a blob should be readable like any file.
    umask = os.umask(0o022)
    try:
        LocalBlobStore(tmp_path).put("a.png", PNG, "image/png")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o644


def test_local_delete_prefix_removes_the_emptied_job_folder(tmp_path):
    store = LocalBlobStore(tmp_path)
    store.put("images/1/0.png", PNG, "image/png")
    store.put("images/10/0.png", PNG, "image/png")
    store.delete_prefix("images/1/")
    assert not (tmp_path / "images" / "1").exists()
    assert (tmp_path / "images" / "10" / "0.png").is_file()


def test_local_store_with_no_folder_yet(tmp_path):
    store = LocalBlobStore(tmp_path / "not-yet")
    assert not store.exists("a.png")
    assert store.delete_prefix("images/") == 0
    with pytest.raises(BlobNotFound):
        store.get("a.png")
    store.put("images/1/0.png", PNG, "image/png")  # creates the folders it needs
    assert store.get("images/1/0.png") == PNG


# -- S3 -------------------------------------------------------------------------------------------

def test_s3_objects_sit_under_the_prefix_with_their_content_type(s3_store, moto_url):
    s3_store.put("images/5/0.png", PNG, "image/png")
    raw = boto3.client("s3", endpoint_url=moto_url)
    head = raw.head_object(Bucket=BUCKET, Key=f"{s3_store.prefix}/images/5/0.png")
    assert head["ContentType"] == "image/png"
    assert head["ContentLength"] == len(PNG)


def test_s3_delete_prefix_pages_and_batches(s3_store, monkeypatch):
    # Small pages and batches stand in for S3's 1000, without writing 1001 objects.
    s3_store.batch_size = 2
    batches = []
    real_delete = s3_store.client.delete_objects

    def counting_delete(**kwargs):
        batches.append(len(kwargs["Delete"]["Objects"]))
        return real_delete(**kwargs)

    monkeypatch.setattr(s3_store.client, "delete_objects", counting_delete)
    for slot in range(5):
        s3_store.put(f"images/9/{slot}.png", PNG, "image/png")
    s3_store.put("images/90/0.png", PNG, "image/png")
    assert s3_store.delete_prefix("images/9/") == 5
    assert batches == [2, 2, 1]
    assert s3_store.exists("images/90/0.png")


def test_s3_without_a_prefix_uses_the_keys_as_they_are(moto_url, monkeypatch):
    monkeypatch.setenv("DREAMLOOP_S3_ENDPOINT_URL", moto_url)
    store = open_blob_store(f"s3://{BUCKET}")
    key = f"bare/{uuid.uuid4().hex}.png"
    store.put(key, PNG, "image/png")
    raw = boto3.client("s3", endpoint_url=moto_url)
    assert raw.get_object(Bucket=BUCKET, Key=key)["Body"].read() == PNG
    assert store.delete_prefix(key) == 1


# -- open_blob_store ------------------------------------------------------------------------------

def test_open_a_plain_path(tmp_path):
    store = open_blob_store(str(tmp_path))
    assert isinstance(store, LocalBlobStore)
    assert store.root == tmp_path
    assert store.describe() == f"folder {tmp_path}"


def test_open_a_file_url(tmp_path):
    folder = tmp_path / "with space"
    store = open_blob_store(folder.as_uri())  # percent-encoded: file:///…/with%20space
    assert isinstance(store, LocalBlobStore)
    assert store.root == folder


def test_open_an_s3_url(aws_env, monkeypatch):
    monkeypatch.setenv("DREAMLOOP_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    store = open_blob_store("s3://my-bucket/some/prefix/")
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix, store.endpoint_url) == (
        "my-bucket", "some/prefix", "http://127.0.0.1:9")
    assert store.describe() == "bucket s3://my-bucket/some/prefix at http://127.0.0.1:9"


def test_open_an_s3_url_without_an_endpoint_means_aws(aws_env, monkeypatch):
    monkeypatch.delenv("DREAMLOOP_S3_ENDPOINT_URL", raising=False)
    store = open_blob_store("s3://my-bucket")
    assert (store.prefix, store.endpoint_url) == ("", None)
    assert store.describe() == "bucket s3://my-bucket"


@pytest.mark.parametrize("url", ["ftp://x", "http://example.com/blobs", "s3://", "s3:///prefix",
                                 "file://otherhost/x", "", "   "])
def test_open_refuses_other_forms(url):
    with pytest.raises(ValueError, match=re.escape(f"blob store is {url!r}: use s3://bucket")):
        open_blob_store(url)


def test_open_refuses_a_bad_s3_prefix(aws_env):
    with pytest.raises(ValueError, match=re.escape("prefix is 'a b'")):
        open_blob_store("s3://my-bucket/a b")
