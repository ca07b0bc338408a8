"""Prefetch plans of ML file formats, checked against files the real libraries wrote."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artfs.fetch.formats import MAX_HEADER, ByteRange, Missing, bytes_reader, plan_for


def plan_of(data: bytes) -> list[ByteRange] | None:
    return plan_for(len(data), bytes_reader(data, 0, len(data)))


def covers_in_order(plan: list[ByteRange], start: int, end: int) -> bool:
    """The plan's ranges after the first tile ``[start, end)`` in increasing order."""
    position = start
    for r in plan[1:]:
        if r.start != position:
            return False
        position = r.end
    return position == end


def test_safetensors_plan_is_the_header_then_each_tensor_in_file_order(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(1)
    tensors: dict[str, np.ndarray] = {
        f"layer{i}.w": rng.random((i + 3, 17), dtype=np.float32) for i in range(12)
    }
    tensors["bias"] = np.arange(5, dtype=np.int64)
    path = tmp_path / "m.safetensors"
    save_file(tensors, str(path), metadata={"format": "np"})
    data = path.read_bytes()
    plan = plan_of(data)
    assert plan is not None
    (length,) = struct.unpack("<Q", data[:8])
    assert plan[0] == ByteRange(0, 8 + length)
    assert covers_in_order(plan, 8 + length, len(data))
    # Each range after the header holds exactly one tensor's bytes, as the library reads them.
    by_bytes = {t.tobytes(): name for name, t in tensors.items()}
    assert sorted(by_bytes[data[r.start : r.end]] for r in plan[1:]) == sorted(tensors)


def test_npy_plan_is_the_header_then_the_array(tmp_path: Path) -> None:
    for version in [(1, 0), (2, 0)]:
        array = np.arange(10_000, dtype=np.float64).reshape(100, 100)
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, array, version=version)
        data = buffer.getvalue()
        header = io.BytesIO(data)
        np.lib.format.read_magic(header)
        np.lib.format.read_array_header_1_0(header) if version == (1, 0) else (
            np.lib.format.read_array_header_2_0(header)
        )
        assert plan_of(data) == [ByteRange(0, header.tell()), ByteRange(header.tell(), len(data))]
        assert data[header.tell() :] == array.tobytes()


def test_parquet_plan_is_the_footer_the_reader_reads_first(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({f"c{i}": list(range(i, i + 2000)) for i in range(6)})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=500)
    data = path.read_bytes()
    footer = pq.ParquetFile(path).metadata.serialized_size
    assert plan_of(data) == [ByteRange(len(data) - 8 - footer, len(data))]


def test_arrow_ipc_plan_is_the_footer_then_the_batches_in_order(tmp_path: Path) -> None:
    import pyarrow as pa

    table = pa.table({"a": list(range(5000)), "b": [str(i) for i in range(5000)]})
    path = tmp_path / "t.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=1000):
            writer.write_batch(batch)
    data = path.read_bytes()
    plan = plan_of(data)
    assert plan is not None
    (footer,) = struct.unpack("<i", data[-10:-6])
    assert plan == [ByteRange(len(data) - 10 - footer, len(data)), ByteRange(8, plan[0].start)]
    # The body starts with the schema message (continuation marker), as the format says.
    assert data[8:12] == b"\xff\xff\xff\xff"
    assert pa.ipc.open_file(pa.BufferReader(data)).num_record_batches == 5


def test_gguf_plan_is_the_header_then_each_tensor_in_info_order(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "m.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.name", "tiny")
    writer.add_array("tokenizer.ggml.tokens", [f"t{i}" for i in range(300)])
    rng = np.random.default_rng(2)
    for i in range(7):
        writer.add_tensor(f"blk.{i}.w", rng.random((i + 1, 33), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    data = path.read_bytes()
    plan = plan_of(data)
    assert plan is not None
    tensors = gguf.GGUFReader(str(path)).tensors
    assert plan[0] == ByteRange(0, min(t.data_offset for t in tensors))
    assert [r.start for r in plan[1:]] == [t.data_offset for t in tensors]
    for r, t in zip(plan[1:], tensors, strict=True):
        assert r.end - r.start >= t.n_bytes  # a tensor's bytes, plus its alignment padding
        assert data[r.start : r.start + t.n_bytes] == t.data.tobytes()


def torch_layout_zip(storages: list[bytes]) -> bytes:
    """A zip in the layout ``torch.save`` writes (torch itself is not installed here):
    stored members under ``archive/``, ``data.pkl`` first, storages at 64-byte offsets."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        members = [("archive/data.pkl", b"\x80\x02}q\x00." * 20), ("archive/byteorder", b"little")]
        members += [(f"archive/data/{i}", s) for i, s in enumerate(storages)]
        members += [("archive/version", b"3\n")]
        for name, payload in members:
            info = zipfile.ZipInfo(name)
            # torch pads the local header's extra field so each record's data is aligned.
            position = buffer.tell() + 30 + len(name) + 4
            info.extra = b"FB" + struct.pack("<H", -position % 64) + b"Z" * (-position % 64)
            archive.writestr(info, payload)
    return buffer.getvalue()


def test_torch_zip_plan_is_the_directory_the_pickle_then_the_storages() -> None:
    rng = np.random.default_rng(3)
    storages = [rng.bytes(n) for n in (4096, 70_000, 100, 33_333)]
    data = torch_layout_zip(storages)
    plan = plan_of(data)
    assert plan is not None
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert plan[0] == ByteRange(archive.start_dir, len(data))
    infos = archive.infolist()
    assert plan[1].start == infos[0].header_offset  # data.pkl
    assert [r.start for r in plan[1:]] == sorted(i.header_offset for i in infos)
    for r, info in zip(plan[1:], infos, strict=True):
        assert data[r.start : r.end].endswith(archive.read(info))


def test_plans_ask_for_the_bytes_they_lack_and_no_more_than_the_bound() -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    data = struct.pack("<Q", len(header)) + header + bytes(16)
    with pytest.raises(Missing) as lacking:
        plan_for(len(data), bytes_reader(data[:16], 0, len(data)))
    assert (lacking.value.offset, lacking.value.length) == (8, len(header))
    huge = struct.pack("<Q", MAX_HEADER + 1) + b"{" + bytes(15)
    asked: list[tuple[int, int]] = []

    def read(offset: int, length: int) -> bytes:
        asked.append((offset, length))
        return bytes_reader(huge, 0, MAX_HEADER + 100)(offset, length)

    assert plan_for(MAX_HEADER + 100, read) is None
    assert all(length <= 16 for _, length in asked)


@pytest.mark.parametrize(
    "hostile",
    [
        struct.pack("<Q", 2**63) + b"{" + bytes(40),  # a lying safetensors length
        struct.pack("<Q", 30) + b'{"w": {"data_offsets": [0, 999999]}}  ',  # a tensor past the end
        struct.pack("<Q", 12) + b'{"w": [1, 2]}' + bytes(20),
        struct.pack("<Q", 30) + b"{" + b"\xff" * 29 + bytes(20),  # not UTF-8
        struct.pack("<Q", 2000) + b"[" * 2000 + bytes(10),  # deep nesting
        b"\x93NUMPY\x01\x00" + struct.pack("<H", 60000) + b"{" * 40,  # a lying .npy length
        b"\x93NUMPY\x09\x00" + bytes(40),
        b"GGUF" + struct.pack("<IQQ", 3, 2**60, 0) + bytes(40),  # a lying tensor count
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**40) + bytes(40),
        b"GGUF"
        + struct.pack("<IQQ", 3, 0, 1)
        + struct.pack("<Q", 1)
        + b"k"
        + struct.pack("<IIQ", 9, 9, 2**62)
        + bytes(40),  # an array of arrays of 2**62
        b"PAR1" + bytes(40) + struct.pack("<I", 2**31) + b"PAR1",  # a lying footer length
        b"ARROW1\x00\x00" + bytes(40) + struct.pack("<i", -5) + b"ARROW1",
        b"PK\x03\x04" + bytes(60),  # a zip with no directory
    ],
)
def test_hostile_headers_give_no_plan(hostile: bytes) -> None:
    assert plan_of(hostile) is None


def test_a_lying_zip_directory_gives_no_plan() -> None:
    data = bytearray(torch_layout_zip([bytes(1000)]))
    end = data.rindex(b"PK\x05\x06")
    data[end + 12 : end + 16] = struct.pack("<I", 2**31)  # directory size
    assert plan_of(bytes(data)) is None
    data = bytearray(torch_layout_zip([bytes(1000)]))
    data[end + 16 : end + 20] = struct.pack("<I", 5)  # directory offset
    assert plan_of(bytes(data)) is None


@settings(max_examples=300, deadline=None)
@given(
    magic=st.sampled_from(
        [b"\x93NUMPY\x01\x00", b"GGUF\x03\x00\x00\x00", b"PK\x03\x04", b"PAR1", b"ARROW1\x00\x00"]
    ),
    body=st.binary(max_size=400),
    tail=st.sampled_from([b"", b"PAR1", b"ARROW1", b"PK\x05\x06" + bytes(18)]),
)
def test_any_bytes_behind_a_magic_give_a_plan_within_the_file_or_none(
    magic: bytes, body: bytes, tail: bytes
) -> None:
    data = magic + body + tail
    plan = plan_of(data)
    assert plan is None or all(0 <= r.start < r.end <= len(data) for r in plan)


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(min_value=0, max_value=1 << 16), flip=st.integers(min_value=0))
def test_truncated_or_flipped_real_files_never_raise(cut: int, flip: int) -> None:
    rng = np.random.default_rng(4)
    for data in (
        torch_layout_zip([rng.bytes(3000), rng.bytes(500)]),
        safetensors_bytes({"a": np.ones(300, np.float32), "b": np.zeros(7, np.int8)}),
    ):
        cut_data = bytearray(data[: cut % (len(data) + 1)])
        if cut_data:
            cut_data[flip % len(cut_data)] ^= 0x5A
        plan = plan_of(bytes(cut_data))
        assert plan is None or all(0 <= r.start < r.end <= len(cut_data) for r in plan)


def safetensors_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return save(tensors)
