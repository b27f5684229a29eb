"""Where feed documents come from: files, folders (recursive) and S3 prefixes, one JSON document at a time.

`temporaldb import SOURCE...` takes any mix of them. A folder yields its
`*.json` and `*.json.gz` files in name order; `s3://bucket/prefix` yields the
objects under the prefix in key order, fetched one at a time (boto3, the usual
credential chain, `--endpoint-url`/`--region`), so memory holds one document
at a time; `read_raw` gives each S3 object's bytes, or a local file to read
when needed (the importer's worker processes read it themselves). Every
failure is a one-line FeedError naming the file or
object: missing, unreadable, not JSON, cut off, or an S3 prefix with nothing
under it.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from temporaldb.feeds.model import FeedError

S3_SCHEME: Final = "s3://"
SUFFIXES: Final = (".json", ".json.gz")
UTF8_BOM: Final = b"\xef\xbb\xbf"
# Every digit as "0", anything else as " ": a run of 20 digits is then a find, which is faster than a regex.
_DIGITS_AS_ZERO: Final = bytes(ord("0") if chr(i).isdigit() and i < 128 else ord(" ") for i in range(256))
_TWENTY_DIGITS: Final = b"0" * 20


@dataclass(frozen=True)
class FeedDocument:
    name: str
    """The file's path or the object's s3:// URL, for messages."""
    document: object


@dataclass(frozen=True)
class RawDocument:
    name: str
    raw: bytes | None
    """The bytes of an S3 object; None for a local file, read when needed (`content`)."""
    path: Path | None
    """The local file (None: an S3 object)."""

    def content(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.path is None:
            raise FeedError(f"{self.name}: neither bytes nor a file")
        return read_file(self.path, self.name)


def decode(name: str, raw: bytes) -> FeedDocument:
    """Parse one document; a gzip file is recognised by its magic bytes, whatever its name.

    orjson parses (several times faster than the standard library, and feeds are large); anything it
    refuses goes to the standard library, which either accepts it too (NaN) or gives the error this function
    reports, so results and messages are the standard library's. So does a document with a run of 20 digits
    or more: orjson would read an integer beyond 64 bits as a float.
    """
    try:
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError) as error:
        raise FeedError(f"{name}: not a readable gzip file ({error})") from None
    if data.translate(_DIGITS_AS_ZERO).find(_TWENTY_DIGITS) < 0:
        try:
            return FeedDocument(name, orjson.loads(data.removeprefix(UTF8_BOM)))
        except orjson.JSONDecodeError:
            pass
    try:
        document = json.loads(data.decode("utf-8-sig"))  # feeds are UTF-8; json.loads(bytes) would guess UTF-16
    except UnicodeDecodeError as error:
        raise FeedError(f"{name}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        cut_off = error.pos >= len(error.doc.rstrip())
        what = "cut off (truncated JSON)" if cut_off else "not JSON"
        raise FeedError(f"{name}: {what}: {error.msg} at line {error.lineno} column {error.colno}") from None
    return FeedDocument(name, document)


def _folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))


def read_file(path: Path, name: str | None = None) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise FeedError(f"{name or path}: cannot read it ({error.strerror})") from None


def _local(source: str) -> Iterator[RawDocument]:
    path = Path(source)
    if path.is_dir():
        files = _folder_files(path)
        if not files:
            raise FeedError(f"{source}: no *.json or *.json.gz files in this folder or below")
    elif path.is_file():
        files = [path]
    else:
        raise FeedError(f"{source}: no such file or folder")
    for file in files:
        yield RawDocument(str(file), None, file)


def _split_s3(source: str) -> tuple[str, str]:
    bucket, _, prefix = source[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise FeedError(f"{source}: an S3 source looks like s3://bucket/prefix")
    return bucket, prefix


def _s3(source: str, client: Any) -> Iterator[RawDocument]:
    import botocore.exceptions  # noqa: PLC0415 (only S3 sources need it)

    bucket, prefix = _split_s3(source)
    found = 0
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                key = str(entry["Key"])
                if key.endswith("/"):
                    continue
                found += 1
                name = f"{S3_SCHEME}{bucket}/{key}"
                try:
                    raw = client.get_object(Bucket=bucket, Key=key)["Body"].read()
                except botocore.exceptions.ClientError as error:
                    raise FeedError(f"{name}: cannot read it ({_aws_reason(error)})") from None
                yield RawDocument(name, raw, None)
    except botocore.exceptions.ClientError as error:
        raise FeedError(f"{source}: cannot list it ({_aws_reason(error)})") from None
    except botocore.exceptions.BotoCoreError as error:
        raise FeedError(f"{source}: cannot reach S3 ({error})") from None
    if not found:
        raise FeedError(f"{source}: no objects under this prefix")


def _aws_reason(error: Any) -> str:
    details = error.response.get("Error", {})
    return f"{details.get('Code', 'error')}: {details.get('Message', '')}".rstrip(": ")


def read_sources(
    sources: Sequence[str], *, endpoint_url: str | None = None, region: str | None = None
) -> Iterator[FeedDocument]:
    """Every document of every source, parsed, in the order given (folders and prefixes sorted by name)."""
    for raw in read_raw(sources, endpoint_url=endpoint_url, region=region):
        yield decode(raw.name, raw.content())


def read_raw(
    sources: Sequence[str], *, endpoint_url: str | None = None, region: str | None = None
) -> Iterator[RawDocument]:
    """Every document, in the order given (folders and prefixes sorted by name): an S3 object's bytes, or a
    local file to read when needed."""
    client = None
    for source in sources:
        if source.startswith(S3_SCHEME):
            if client is None:
                import boto3  # noqa: PLC0415

                client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
            yield from _s3(source, client)
        else:
            yield from _local(source)
