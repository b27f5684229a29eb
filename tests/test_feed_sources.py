"""Feed documents from files, folders and S3 (the emulator over HTTP); every bad source is a one-line error."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from temporaldb.feeds.model import FeedError
from temporaldb.feeds.sources import decode, read_sources
from tests import drill_fixtures

BUCKET = "raw-feeds"


@pytest.fixture
def bucket(emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    drill_fixtures.set_credentials(monkeypatch)
    with drill_fixtures.s3_bucket(emulator, BUCKET) as client:
        yield client


def test_a_folder_yields_its_json_files_recursively_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / "a.json").write_text(json.dumps({"n": 1}))
    (tmp_path / "b" / "deep" / "c.json.gz").write_bytes(gzip.compress(json.dumps({"n": 3}).encode()))
    (tmp_path / "b" / "b.json").write_text(json.dumps({"n": 2}))
    (tmp_path / "notes.txt").write_text("not a feed")
    documents = list(read_sources([str(tmp_path)]))
    assert [d.document for d in documents] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert documents[2].name.endswith("c.json.gz")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"game": {"actions": [1, 2', "cut off (truncated JSON)"),
        (b"<html>rate limited</html>", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_a_bad_file_is_named_in_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "game.json"
    bad.write_bytes(content)
    with pytest.raises(FeedError) as error:
        list(read_sources([str(bad)]))
    assert str(error.value).startswith(f"{bad}: {message}")
    assert "\n" not in str(error.value)


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="no such file or folder"):
        list(read_sources([str(tmp_path / "nope")]))
    with pytest.raises(FeedError, match=r"no \*\.json"):
        list(read_sources([str(tmp_path)]))


def test_s3_prefix_streams_its_objects_in_key_order(bucket: Any, emulator: str) -> None:
    bucket.put_object(Bucket=BUCKET, Key="pbp/2023/b.json", Body=json.dumps({"n": 2}).encode())
    bucket.put_object(Bucket=BUCKET, Key="pbp/2023/a.json.gz", Body=gzip.compress(json.dumps({"n": 1}).encode()))
    bucket.put_object(Bucket=BUCKET, Key="other/x.json", Body=b"{}")
    documents = list(read_sources([f"s3://{BUCKET}/pbp/"], endpoint_url=emulator))
    assert [d.document for d in documents] == [{"n": 1}, {"n": 2}]
    assert documents[0].name == f"s3://{BUCKET}/pbp/2023/a.json.gz"


def test_s3_errors_name_the_prefix_or_object(bucket: Any, emulator: str) -> None:
    with pytest.raises(FeedError, match=rf"^s3://{BUCKET}/empty/: no objects under this prefix$"):
        list(read_sources([f"s3://{BUCKET}/empty/"], endpoint_url=emulator))
    with pytest.raises(FeedError, match=r"^s3://no-such-bucket/x: cannot list it \(NoSuchBucket"):
        list(read_sources(["s3://no-such-bucket/x"], endpoint_url=emulator))
    bucket.put_object(Bucket=BUCKET, Key="bad/g.json", Body=b'{"cut": ')
    with pytest.raises(FeedError, match=rf"^s3://{BUCKET}/bad/g.json: cut off"):
        list(read_sources([f"s3://{BUCKET}/bad/"], endpoint_url=emulator))


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 5, max_value=2**70)
    | st.floats()
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES, bom=st.booleans(), compressed=st.booleans())
def test_decoding_equals_the_standard_library(value: object, bom: bool, compressed: bool) -> None:
    """orjson parses first; whatever it gives must be what json.loads gives (big integers included)."""
    raw = (b"\xef\xbb\xbf" if bom else b"") + json.dumps(value).encode()
    document = decode("x.json", gzip.compress(raw) if compressed else raw).document
    assert json.dumps(document) == json.dumps(json.loads(json.dumps(value)))  # as text: NaN, -0.0 and 1 vs 1.0


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=40) | st.text(max_size=40).map(str.encode))
def test_any_bytes_decode_or_fail_as_the_standard_library_says(raw: bytes) -> None:
    try:
        expected: object = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        with pytest.raises(FeedError, match=r"^x\.json: (not UTF-8 text|not JSON|cut off|not a readable gzip)"):
            decode("x.json", raw)
        return
    if raw[:2] != b"\x1f\x8b":
        document = decode("x.json", raw).document
        assert json.dumps(document) == json.dumps(expected)  # NaN compares unequal to itself, its text does not
