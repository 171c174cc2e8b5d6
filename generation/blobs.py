"""Where images live: a local folder by default, an S3-compatible bucket when configured.

Full-size images and grids are written under deterministic keys such as
`images/{job_id}/{slot}.png`, so a retried job overwrites rather than
duplicates. The API is synchronous because it is called from the worker
threads that encode images; async callers wrap it in `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

import boto3
from botocore.exceptions import ClientError

MAX_KEY_CHARS = 512
ENDPOINT_ENV = "DREAMLOOP_S3_ENDPOINT_URL"
KEY_FORM = ("a key is relative and '/'-separated, of segments made of letters, digits, '.', '_' "
            f"and '-' (no empty, '.' or '..' segment), at most {MAX_KEY_CHARS} characters")
URL_FORMS = "s3://bucket or s3://bucket/prefix, file:///path, or a plain folder path"
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


class BlobNotFound(KeyError):
    """No blob at a key; the message names the key and the store."""

    def __str__(self) -> str:
        # KeyError's own str() would show the message in quotes, like a repr.
        return str(self.args[0]) if self.args else ""


class BlobStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def describe(self) -> str: ...


def _key_problem(key: object) -> str | None:
    if not isinstance(key, str) or not key:
        return "it is empty"
    if len(key) > MAX_KEY_CHARS:
        return f"it has {len(key)} characters"
    if key.startswith("/"):
        return "it starts with '/'"
    for segment in key.split("/"):
        if not segment:
            return "it has an empty segment"
        if segment in (".", ".."):
            return f"it has a '{segment}' segment"
        if not _SEGMENT.fullmatch(segment):
            return f"segment {segment!r} has other characters"
    return None


def validate_key(key: str) -> str:
    """The key itself if it is well formed, else ValueError naming it and the allowed form."""
    problem = _key_problem(key)
    if problem:
        raise ValueError(f"key is {key!r}: {problem}; {KEY_FORM}")
    return key


def validate_prefix(prefix: str) -> str:
    """A key, optionally ending with '/'. Never empty: that would mean every blob in the store."""
    problem = _key_problem(prefix.removesuffix("/") if isinstance(prefix, str) else prefix)
    if problem:
        raise ValueError(f"prefix is {prefix!r}: {problem}; a prefix is a key, which may end "
                         f"with '/', and {KEY_FORM}")
    return prefix


class LocalBlobStore:
    """Blobs as files under a root folder; key segments become sub-folders."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()

    def describe(self) -> str:
        return f"folder {self.root}"

    def _path(self, key: str) -> Path:
        # Validated keys cannot climb out of the root: no '..', no leading '/'.
        return self.root.joinpath(*validate_key(key).split("/"))

    def put(self, key: str, data: bytes, content_type: str) -> None:
        # content_type is for object stores; a local file's type is in its name.
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{secrets.token_hex(6)}.tmp")
        # O_EXCL with mode 0o666 honours the umask, unlike mkstemp's 0o600.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())  # the bytes are on disk before the name points at them
            os.replace(temp, final)  # atomic: readers see the old blob or the new, never half
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
        _fsync_folder(final.parent)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFound(f"no blob at key {key!r} in {self.describe()}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob whose key starts with prefix, as S3 would; the number deleted."""
        prefix = validate_prefix(prefix)
        folder_key = prefix.rpartition("/")[0]
        # Only the deepest folder that can hold matching keys is searched.
        top = self._path(folder_key) if folder_key else self.root
        count = 0
        for dirpath, _dirnames, filenames in os.walk(top, topdown=False):
            for name in filenames:
                path = Path(dirpath, name)
                if self._key_of(path).startswith(prefix):
                    path.unlink()
                    count += 1
            self._remove_if_empty(Path(dirpath), prefix)
        return count

    def _key_of(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _remove_if_empty(self, folder: Path, prefix: str) -> None:
        # Empty job folders would pile up otherwise; a folder still holding blobs stays.
        if folder != self.root and f"{self._key_of(folder)}/".startswith(prefix):
            with contextlib.suppress(OSError):
                folder.rmdir()


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself survive a power loss (POSIX; Windows cannot open folders)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3BlobStore:
    """Blobs as objects in an S3-compatible bucket, under `{prefix}/` when a prefix is given."""

    batch_size = 1000  # S3's limit per list page and per delete_objects call

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            validate_prefix(self.prefix)
        self.endpoint_url = endpoint_url
        # One client for the store's life: clients are thread-safe and slow to build.
        self.client = boto3.client("s3", endpoint_url=endpoint_url)

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"bucket {where}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    def _object_key(self, key: str) -> str:
        key = validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._object_key(key), Body=data,
                               ContentType=content_type)

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as error:
            if _is_not_found(error):
                raise BlobNotFound(f"no blob at key {key!r} in {self.describe()}") from None
            raise
        with contextlib.closing(response["Body"]) as body:
            return body.read()

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as error:
            if _is_not_found(error):
                return False
            raise  # e.g. 403: saying "missing" would hide a permissions problem
        return True

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with prefix; the number deleted."""
        prefix = validate_prefix(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        # Listed in full first, so deleting never disturbs the listing's pagination.
        keys = self._list_keys(full)
        for start in range(0, len(keys), self.batch_size):
            self._delete_batch(keys[start:start + self.batch_size])
        return len(keys)

    def _list_keys(self, full_prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=full_prefix,
            PaginationConfig={"PageSize": self.batch_size})
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def _delete_batch(self, keys: list[str]) -> None:
        response = self.client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
        # delete_objects answers 200 even when some keys failed; those are listed here.
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise OSError(f"{len(errors)} blobs not deleted from {self.describe()}, first "
                          f"{first.get('Key')!r}: {first.get('Code')} {first.get('Message')}")


def _is_not_found(error: ClientError) -> bool:
    # get_object says NoSuchKey; head_object has no body to say it in, so only "404".
    code = error.response.get("Error", {}).get("Code")
    return code in ("NoSuchKey", "404", "NotFound")


def open_blob_store(url: str) -> BlobStore:
    """`s3://bucket/optional/prefix` → S3BlobStore (endpoint from the DREAMLOOP_S3_ENDPOINT_URL
    environment variable when set, credentials the standard AWS way); a plain path or
    `file:///path` → LocalBlobStore. Anything else: ValueError naming the url and the allowed
    forms."""
    if url.startswith("s3://"):
        parsed = urlparse(url)
        if not parsed.netloc or parsed.query or parsed.fragment:
            raise ValueError(f"blob store is {url!r}: use {URL_FORMS}")
        endpoint = os.environ.get(ENDPOINT_ENV) or None
        return S3BlobStore(parsed.netloc, parsed.path, endpoint_url=endpoint)
    if url.startswith("file://"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost") or not parsed.path:
            raise ValueError(f"blob store is {url!r}: use {URL_FORMS}")
        return LocalBlobStore(unquote(parsed.path))
    if not url.strip() or "://" in url:
        raise ValueError(f"blob store is {url!r}: use {URL_FORMS}")
    return LocalBlobStore(url)


def image_key(job_id: str | int, slot: int) -> str:
    """Where image `slot` of a job lives: deterministic, so a retried job overwrites it."""
    return f"images/{job_id}/{slot}.png"


def grid_key(job_id: str | int) -> str:
    return f"images/{job_id}/grid.webp"


def job_prefix(job_id: str | int) -> str:
    """Every blob of a job (its images, grid and upscale) is under this prefix."""
    return f"images/{job_id}/"
