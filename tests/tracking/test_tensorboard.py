"""Scalars from TensorBoard event files, written by the real tensorboardX as a job's code would.

tensorboardX writes from a background thread, and its ``flush`` does not wait for that thread:
tests that read a file still being written read until the points they expect arrive
(``read_until``); the others close the writer, which does wait, before reading.
"""

import math
import os
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboardX import SummaryWriter  # type: ignore[import-untyped]
from tensorboardX.crc32c import crc32c as tensorboardx_crc32c  # type: ignore[import-untyped]
from tensorboardX.proto.event_pb2 import Event  # type: ignore[import-untyped]
from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata  # type: ignore[import-untyped]
from tensorboardX.proto.tensor_pb2 import TensorProto  # type: ignore[import-untyped]
from tensorboardX.proto.tensor_shape_pb2 import TensorShapeProto  # type: ignore[import-untyped]
from tensorboardX.record_writer import RecordWriter  # type: ignore[import-untyped]

from tracking import tensorboard
from tracking.tensorboard import (
    EventDirectoryWatcher,
    EventFileReader,
    ScalarPoint,
    crc32c,
)

WALL_TIME = 1_700_000_000.25  # given to every event, so that points compare exactly

# --- writing event files ------------------------------------------------------------------------


@contextmanager
def summary_writer(directory: Path, suffix: str = "") -> Iterator[Any]:
    """A tensorboardX writer of one new event file in ``directory``, closed at the end."""
    # The file is named after the current second: two writers in one directory need suffixes.
    writer = SummaryWriter(str(directory), filename_suffix=suffix)
    try:
        yield writer
    finally:
        writer.close()


def write_scalars(directory: Path, scalars: list[tuple[str, float, int]], suffix: str = "") -> Path:
    """An event file in ``directory`` holding ``(tag, value, step)`` scalars, old style."""
    with summary_writer(directory, suffix) as writer:
        for tag, value, step in scalars:
            writer.add_scalar(tag, value, step, walltime=WALL_TIME)
    return event_file(directory, suffix)


def event_file(directory: Path, suffix: str = "") -> Path:
    (path,) = directory.glob(f"*tfevents*{suffix}")
    return path


def write_records(path: Path, records: list[bytes]) -> None:
    """Raw records, framed by tensorboardX (its CRC code, not the one under test)."""
    writer = RecordWriter(str(path))
    for data in records:
        writer.write(data)
    writer.close()


def scalar_event(tag: str, value: float, step: int) -> bytes:
    summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
    return bytes(Event(wall_time=WALL_TIME, step=step, summary=summary).SerializeToString())


def tensor_event(tag: str, tensor: Any, step: int = 1, plugin: str | None = "scalars") -> bytes:
    value = Summary.Value(tag=tag, tensor=tensor)
    if plugin is not None:
        value.metadata.CopyFrom(
            SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=plugin))
        )
    event = Event(wall_time=WALL_TIME, step=step, summary=Summary(value=[value]))
    return bytes(event.SerializeToString())


def record_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each record in an event file's bytes."""
    spans, start = [], 0
    while start < len(data):
        (length,) = struct.unpack_from("<Q", data, start)
        spans.append((start, start + 16 + length))
        start += 16 + length
    return spans


def point(key: str, value: float, step: int) -> ScalarPoint:
    return ScalarPoint(key=key, step=step, wall_time=WALL_TIME, value=value)


def read_until(read: Callable[[], list[ScalarPoint]], writer: Any, count: int) -> list[ScalarPoint]:
    """What ``read`` returns, call after call, until ``count`` points came (10 s at most)."""
    points: list[ScalarPoint] = []
    deadline = time.monotonic() + 10
    while len(points) < count and time.monotonic() < deadline:
        writer.flush()  # not a barrier (see the module docstring), hence the loop
        points += read()
        time.sleep(0.01)
    return points


# --- crc32c -------------------------------------------------------------------------------------


def test_crc32c_gives_the_castagnoli_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


@settings(max_examples=50)
@given(st.binary(max_size=300))
def test_crc32c_agrees_with_tensorboardx(data: bytes) -> None:
    assert crc32c(data) == tensorboardx_crc32c(data)


# --- one file: what is read ---------------------------------------------------------------------


def test_old_style_scalars_are_read_with_their_tags_steps_and_times(tmp_path: Path) -> None:
    path = write_scalars(
        tmp_path, [("loss", 0.5, 1), ("accuracy", 0.75, 1), ("loss", 0.25, 2), ("lr", 0.0, 2)]
    )

    assert EventFileReader(path).read_new() == [
        point("loss", 0.5, 1),
        point("accuracy", 0.75, 1),
        point("loss", 0.25, 2),
        point("lr", 0.0, 2),
    ]


def test_steps_are_signed_64_bit_integers(tmp_path: Path) -> None:
    path = write_scalars(tmp_path, [("loss", 1.0, -5), ("loss", 2.0, 2**40), ("loss", 3.0, 0)])

    assert [p.step for p in EventFileReader(path).read_new()] == [-5, 2**40, 0]


def test_nan_and_infinities_are_kept(tmp_path: Path) -> None:
    path = write_scalars(tmp_path, [("a", math.nan, 1), ("b", math.inf, 1), ("c", -math.inf, 1)])

    values = [p.value for p in EventFileReader(path).read_new()]

    assert len(values) == 3
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf]


def shape(*dims: int) -> Any:
    return TensorShapeProto(dim=[TensorShapeProto.Dim(size=size) for size in dims])


DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64, DT_HALF, DT_STRING, DT_BOOL = 1, 2, 3, 9, 19, 7, 10


@pytest.mark.parametrize(
    ("tensor", "value"),
    [
        (TensorProto(dtype=DT_FLOAT, tensor_shape=shape(), float_val=[0.5]), 0.5),
        (TensorProto(dtype=DT_DOUBLE, tensor_shape=shape(), double_val=[0.1]), 0.1),
        (TensorProto(dtype=DT_INT32, tensor_shape=shape(), int_val=[-7]), -7.0),
        (TensorProto(dtype=DT_INT64, tensor_shape=shape(), int64_val=[2**40]), 2.0**40),
        # 0x3E00 is 1.5 in IEEE half precision.
        (TensorProto(dtype=DT_HALF, tensor_shape=shape(), half_val=[0x3E00]), 1.5),
        (TensorProto(dtype=DT_FLOAT, tensor_content=struct.pack("<f", -2.5)), -2.5),
        (TensorProto(dtype=DT_DOUBLE, tensor_content=struct.pack("<d", 0.1)), 0.1),
        (TensorProto(dtype=DT_INT32, tensor_content=struct.pack("<i", -3)), -3.0),
        (TensorProto(dtype=DT_INT64, tensor_content=struct.pack("<q", -(2**40))), -(2.0**40)),
        (TensorProto(dtype=DT_HALF, tensor_content=struct.pack("<e", 0.25)), 0.25),
        # A one-element tensor of rank 1 holds one number as much as a rank 0 one does.
        (TensorProto(dtype=DT_FLOAT, tensor_shape=shape(1), float_val=[4.0]), 4.0),
    ],
)
def test_scalar_tensors_are_read(tmp_path: Path, tensor: Any, value: float) -> None:
    path = tmp_path / "events.out.tfevents.1"
    write_records(path, [tensor_event("loss", tensor, step=3)])

    assert EventFileReader(path).read_new() == [point("loss", value, 3)]


def test_a_scalar_tensor_without_plugin_metadata_is_read(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.1"
    tensor = TensorProto(dtype=DT_FLOAT, float_val=[0.5])
    write_records(path, [tensor_event("loss", tensor, plugin=None)])

    assert EventFileReader(path).read_new() == [point("loss", 0.5, 1)]


def test_scalar_tensors_written_through_summary_writer_are_read(tmp_path: Path) -> None:
    # tensorboardX 2.6 has no `new_style` scalars; this is what torch's new_style=True writes.
    tensor = TensorProto(dtype=DT_FLOAT, tensor_shape=shape(), float_val=[0.125])
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    summary = Summary(value=[Summary.Value(tag="loss", tensor=tensor, metadata=metadata)])
    with summary_writer(tmp_path) as writer:
        writer.file_writer.add_summary(summary, 4, WALL_TIME)
        writer.add_scalar("accuracy", 0.75, 4, walltime=WALL_TIME)

    assert EventFileReader(event_file(tmp_path)).read_new() == [
        point("loss", 0.125, 4),
        point("accuracy", 0.75, 4),
    ]


@pytest.mark.parametrize(
    ("tensor", "plugin"),
    [
        (TensorProto(dtype=DT_FLOAT, tensor_shape=shape(3), float_val=[1, 2, 3]), "scalars"),
        # One value for a bigger shape means "every element is this": not one number.
        (TensorProto(dtype=DT_FLOAT, tensor_shape=shape(2), float_val=[1]), "scalars"),
        (TensorProto(dtype=DT_FLOAT, tensor_shape=shape(0), float_val=[]), "scalars"),
        (TensorProto(dtype=DT_FLOAT, tensor_content=struct.pack("<2f", 1, 2)), "scalars"),
        (TensorProto(dtype=DT_STRING, tensor_shape=shape(), string_val=[b"1.0"]), "scalars"),
        (TensorProto(dtype=DT_BOOL, tensor_shape=shape(), bool_val=[True]), "scalars"),
        (
            TensorProto(
                dtype=DT_FLOAT, tensor_shape=TensorShapeProto(unknown_rank=True), float_val=[1]
            ),
            "scalars",
        ),
        (TensorProto(dtype=DT_FLOAT, tensor_shape=shape(-1), float_val=[1]), "scalars"),
        # Another plugin's single number means what that plugin says, not a metric.
        (TensorProto(dtype=DT_FLOAT, tensor_shape=shape(), float_val=[1]), "hparams"),
    ],
)
def test_tensors_that_are_not_scalars_are_ignored(tmp_path: Path, tensor: Any, plugin: str) -> None:
    path = tmp_path / "events.out.tfevents.1"
    write_records(path, [tensor_event("other", tensor, plugin=plugin), scalar_event("loss", 1, 2)])

    assert EventFileReader(path).read_new() == [point("loss", 1.0, 2)]


def test_histograms_and_text_are_ignored(tmp_path: Path) -> None:
    with summary_writer(tmp_path) as writer:
        writer.add_scalar("loss", 0.5, 1, walltime=WALL_TIME)
        writer.add_histogram("weights", np.arange(100, dtype=float), 1, walltime=WALL_TIME)
        writer.add_text("notes", "0.25", 1, walltime=WALL_TIME)
        writer.add_scalar("loss", 0.25, 2, walltime=WALL_TIME)
    path = event_file(tmp_path)

    assert EventFileReader(path).read_new() == [point("loss", 0.5, 1), point("loss", 0.25, 2)]


def test_unknown_fields_of_every_wire_type_are_skipped(tmp_path: Path) -> None:
    unknown = b"".join(
        [
            b"\xa0\x06\x96\x01",  # field 100, varint 150
            b"\xa9\x06" + struct.pack("<d", 1.0),  # field 101, 64-bit
            b"\xb2\x06\x03abc",  # field 102, length-delimited
            b"\xbb\x06\x08\x01\xbc\x06",  # field 103: a group holding field 1 = 1
            b"\xc5\x06" + struct.pack("<f", 1.0),  # field 104, 32-bit
        ]
    )
    value = Summary.Value(tag="loss", simple_value=0.5).SerializeToString() + unknown
    summary = b"\x0a" + bytes([len(value)]) + value + unknown
    event = unknown + Event(wall_time=WALL_TIME, step=1).SerializeToString()
    event += b"\x2a" + bytes([len(summary)]) + summary + unknown
    path = tmp_path / "events.out.tfevents.1"
    write_records(path, [event])

    reader = EventFileReader(path)

    assert reader.read_new() == [point("loss", 0.5, 1)]
    assert reader.corrupt_records == 0


@pytest.mark.parametrize(
    ("tensor", "number"),
    [
        (b"\x08\x01" + b"\x2d" + struct.pack("<f", 0.75), 0.75),  # DT_FLOAT, float_val 0.75
        (b"\x08\x09" + b"\x50\x96\x01", 150.0),  # DT_INT64, int64_val 150
    ],
)
def test_unpacked_repeated_values_are_read(tmp_path: Path, tensor: bytes, number: float) -> None:
    # Writers pack repeated numbers, but the wire format allows them one field each.
    value = b"\x0a\x04loss" + b"\x42" + bytes([len(tensor)]) + tensor
    summary = b"\x0a" + bytes([len(value)]) + value
    event = Event(wall_time=WALL_TIME, step=1).SerializeToString()
    event += b"\x2a" + bytes([len(summary)]) + summary
    path = tmp_path / "events.out.tfevents.1"
    write_records(path, [event])

    assert EventFileReader(path).read_new() == [point("loss", number, 1)]


@settings(max_examples=50, deadline=None)
@given(
    scalars=st.lists(
        st.tuples(
            st.text(max_size=20),
            st.floats(width=32, allow_nan=False),
            st.integers(-(2**63), 2**63 - 1),
        ),
        max_size=10,
    )
)
def test_any_simple_values_read_back_as_written(
    tmp_path_factory: pytest.TempPathFactory, scalars: list[tuple[str, float, int]]
) -> None:
    path = tmp_path_factory.mktemp("events") / "events.out.tfevents.1"
    write_records(path, [scalar_event(tag, value, step) for tag, value, step in scalars])

    assert EventFileReader(path).read_new() == [point(*scalar) for scalar in scalars]


@settings(max_examples=200, deadline=None)
@given(content=st.binary(max_size=400))
def test_no_file_content_makes_reading_fail(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    path = tmp_path_factory.mktemp("events") / "events.out.tfevents.1"
    path.write_bytes(content)
    reader = EventFileReader(path, max_bytes=64)

    for _ in range(10):
        reader.read_new()

    assert 0 <= reader.offset <= len(content)


VALID_EVENTS = [
    scalar_event("loss", 0.5, 3),
    tensor_event("loss", TensorProto(dtype=DT_HALF, tensor_shape=shape(1), half_val=[0x3E00])),
    tensor_event("loss", TensorProto(dtype=DT_INT64, tensor_content=struct.pack("<q", 7))),
]


@settings(max_examples=300, deadline=None)
@given(
    event=st.sampled_from(VALID_EVENTS),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4),
)
def test_no_damage_to_an_event_makes_reading_fail(
    tmp_path_factory: pytest.TempPathFactory, event: bytes, flips: list[tuple[int, int]]
) -> None:
    damaged = bytearray(event)
    for position, bits in flips:
        damaged[position % len(damaged)] ^= bits
    path = tmp_path_factory.mktemp("events") / "events.out.tfevents.1"
    # Framed with a good CRC: the damage reaches the decoder.
    write_records(path, [bytes(damaged), scalar_event("after", 1.0, 1)])

    points = EventFileReader(path).read_new()

    assert points[-1] == point("after", 1.0, 1)


# --- one file: reading as it grows --------------------------------------------------------------


def test_each_read_returns_only_the_points_added_since_the_last(tmp_path: Path) -> None:
    with summary_writer(tmp_path) as writer:
        reader = EventFileReader(event_file(tmp_path))
        for step in (1, 2, 3):
            writer.add_scalar("loss", step / 2, step, walltime=WALL_TIME)
        first = read_until(reader.read_new, writer, 3)
        writer.add_scalar("loss", 4.0, 4, walltime=WALL_TIME)
        writer.add_scalar("accuracy", 0.5, 4, walltime=WALL_TIME)
        second = read_until(reader.read_new, writer, 2)
        writer.flush()
        third = reader.read_new()

    assert first == [point("loss", 0.5, 1), point("loss", 1.0, 2), point("loss", 1.5, 3)]
    assert second == [point("loss", 4.0, 4), point("accuracy", 0.5, 4)]
    assert third == []


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda start, end: start + 5, id="inside-the-header"),
        pytest.param(lambda start, end: (start + end) // 2, id="inside-the-data"),
        pytest.param(lambda start, end: end - 1, id="inside-the-data-crc"),
    ],
)
def test_a_partly_written_last_record_waits_for_the_rest(
    tmp_path: Path, cut: Callable[[int, int], int]
) -> None:
    written = write_scalars(tmp_path / "written", [("loss", 1.0, 1), ("loss", 2.0, 2)])
    data = written.read_bytes()
    start, end = record_spans(data)[-1]
    path = tmp_path / "events.out.tfevents.1"
    path.write_bytes(data[: cut(start, end)])
    reader = EventFileReader(path)

    before = reader.read_new()
    again = reader.read_new()
    with path.open("ab") as file:
        file.write(data[cut(start, end) :])
    after = reader.read_new()

    assert before == [point("loss", 1.0, 1)]
    assert again == []
    assert after == [point("loss", 2.0, 2)]
    assert reader.corrupt_records == 0


def damage(path: Path, record: int, offset_in_record: Callable[[int, int], int]) -> None:
    """Flip the bits of one byte of the ``record``-th record (0 is the file_version event)."""
    data = bytearray(path.read_bytes())
    start, end = record_spans(bytes(data))[record]
    data[offset_in_record(start, end)] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "where",
    [
        # The last byte of an event's data is the top byte of the simple_value: the event
        # still parses, only the CRC tells the value is wrong.
        pytest.param(lambda start, end: end - 5, id="data"),
        pytest.param(lambda start, end: end - 1, id="data-crc"),
        pytest.param(lambda start, end: start, id="length"),
        pytest.param(lambda start, end: start + 9, id="length-crc"),
    ],
)
def test_a_damaged_record_is_skipped_and_the_next_are_read(
    tmp_path: Path, where: Callable[[int, int], int]
) -> None:
    path = write_scalars(tmp_path, [("loss", 1.0, 1), ("loss", 2.0, 2), ("loss", 3.0, 3)])
    damage(path, 2, where)
    reader = EventFileReader(path)

    points = reader.read_new()

    assert points == [point("loss", 1.0, 1), point("loss", 3.0, 3)]
    assert reader.corrupt_records == 1


def test_a_damaged_header_longer_than_one_read_is_one_damaged_record(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.1"
    write_records(path, [scalar_event("loss", 1.0, 1), big_event(2), scalar_event("loss", 3.0, 3)])
    damage(path, 1, lambda start, end: start)
    reader = EventFileReader(path, max_bytes=100)

    # The search for the next good header takes a dozen reads of 100 bytes.
    points = [p for _ in range(20) for p in reader.read_new()]

    assert points == [point("loss", 1.0, 1), point("loss", 3.0, 3)]
    assert reader.corrupt_records == 1


def test_a_record_that_is_no_event_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.1"
    write_records(path, [b"\xff" * 12, scalar_event("loss", 1.0, 1)])
    reader = EventFileReader(path)

    assert reader.read_new() == [point("loss", 1.0, 1)]
    assert reader.corrupt_records == 1


def test_a_long_file_is_read_a_bounded_amount_at_a_time(tmp_path: Path) -> None:
    scalars = [("loss", float(step), step) for step in range(50)]
    path = write_scalars(tmp_path, scalars)
    reader = EventFileReader(path, max_bytes=100)

    reads = [reader.read_new() for _ in range(len(scalars) + 1)]

    # A record of one scalar takes 42 bytes: two fit in 100.
    assert max(len(points) for points in reads) == 2
    assert [p for points in reads for p in points] == [point(*s) for s in scalars]
    assert reads[-1] == []


def big_event(step: int) -> bytes:
    """One event holding a big text and a scalar, as TensorFlow 1's merged summaries do."""
    text = TensorProto(dtype=DT_STRING, tensor_shape=shape(1), string_val=[b"x" * 1000])
    summary = Summary(
        value=[Summary.Value(tag="notes", tensor=text), Summary.Value(tag="loss", simple_value=1)]
    )
    return bytes(Event(wall_time=WALL_TIME, step=step, summary=summary).SerializeToString())


def test_a_record_longer_than_one_read_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.1"
    write_records(path, [big_event(1), scalar_event("loss", 2.0, 2)])
    reader = EventFileReader(path, max_bytes=100)

    points = reader.read_new() + reader.read_new()

    assert points == [point("loss", 1.0, 1), point("loss", 2.0, 2)]


def test_a_record_longer_than_the_record_limit_is_skipped_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tensorboard, "MAX_RECORD_BYTES", 500)
    path = tmp_path / "events.out.tfevents.1"
    write_records(path, [big_event(1), scalar_event("loss", 2.0, 2)])
    reader = EventFileReader(path, max_bytes=100)

    points = reader.read_new() + reader.read_new()

    assert points == [point("loss", 2.0, 2)]
    assert reader.corrupt_records == 0


def test_a_file_replaced_under_its_name_is_read_from_its_start(tmp_path: Path) -> None:
    path = write_scalars(tmp_path / "old", [("loss", 1.0, 1)])
    # Longer than the file it replaces: its size alone does not tell it is another file.
    replacement = write_scalars(tmp_path / "new", [("loss", 5.0, 1), ("loss", 6.0, 2)])
    reader = EventFileReader(path)
    reader.read_new()

    os.replace(replacement, path)

    assert reader.read_new() == [point("loss", 5.0, 1), point("loss", 6.0, 2)]


def test_a_file_rewritten_shorter_is_read_from_its_start(tmp_path: Path) -> None:
    path = write_scalars(tmp_path / "old", [("loss", 1.0, 1), ("loss", 2.0, 2)])
    shorter = write_scalars(tmp_path / "new", [("loss", 5.0, 1)])
    reader = EventFileReader(path)
    reader.read_new()

    path.write_bytes(shorter.read_bytes())  # the same file (inode), truncated and written again

    assert reader.read_new() == [point("loss", 5.0, 1)]


def test_a_missing_file_or_a_fifo_reads_as_nothing(tmp_path: Path) -> None:
    fifo = tmp_path / "events.out.tfevents.fifo"
    os.mkfifo(fifo)

    assert EventFileReader(tmp_path / "events.out.tfevents.missing").read_new() == []
    assert EventFileReader(fifo).read_new() == []  # without blocking for a writer


# --- a directory of runs ------------------------------------------------------------------------


def test_keys_name_the_run_directory_of_their_file(tmp_path: Path) -> None:
    write_scalars(tmp_path, [("loss", 1.0, 1)])
    write_scalars(tmp_path / "train", [("loss", 2.0, 1)])
    write_scalars(tmp_path / "eval", [("loss", 3.0, 1), ("accuracy", 0.5, 1)])
    write_scalars(tmp_path / "sweep" / "lr=0.1", [("loss/total", 4.0, 1)])

    points = EventDirectoryWatcher(tmp_path).poll()

    assert sorted(points, key=lambda p: p.key) == [
        point("eval/accuracy", 0.5, 1),
        point("eval/loss", 3.0, 1),
        point("loss", 1.0, 1),
        point("sweep/lr=0.1/loss/total", 4.0, 1),
        point("train/loss", 2.0, 1),
    ]


def test_each_poll_returns_what_is_new_in_old_and_new_files(tmp_path: Path) -> None:
    watcher = EventDirectoryWatcher(tmp_path)
    nothing_yet = watcher.poll()
    write_scalars(tmp_path / "train", [("loss", 1.0, 1)])
    first = watcher.poll()
    write_scalars(tmp_path / "train", [("loss", 2.0, 2)], suffix=".second")
    write_scalars(tmp_path / "eval", [("loss", 3.0, 2)])
    second = watcher.poll()

    assert nothing_yet == []
    assert first == [point("train/loss", 1.0, 1)]
    assert sorted(second, key=lambda p: p.value) == [
        point("train/loss", 2.0, 2),
        point("eval/loss", 3.0, 2),
    ]
    assert watcher.poll() == []


def test_a_poll_reads_the_growth_of_a_file_being_written(tmp_path: Path) -> None:
    watcher = EventDirectoryWatcher(tmp_path)
    with summary_writer(tmp_path / "train") as writer:
        writer.add_scalar("loss", 1.0, 1, walltime=WALL_TIME)
        first = read_until(watcher.poll, writer, 1)
        writer.add_scalar("loss", 2.0, 2, walltime=WALL_TIME)
        second = read_until(watcher.poll, writer, 1)

    assert first == [point("train/loss", 1.0, 1)]
    assert second == [point("train/loss", 2.0, 2)]


def test_a_poll_reads_a_bounded_amount_of_each_file(tmp_path: Path) -> None:
    scalars = [("loss", float(step), step) for step in range(50)]
    write_scalars(tmp_path / "train", scalars)
    watcher = EventDirectoryWatcher(tmp_path, max_bytes_per_file=100)

    polls = [watcher.poll() for _ in range(len(scalars) + 1)]

    assert 0 < len(polls[0]) < len(scalars)
    assert [p for points in polls for p in points] == [
        point(f"train/{tag}", value, step) for tag, value, step in scalars
    ]


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    write_scalars(root / "train", [("loss", 1.0, 1)])
    secret = write_scalars(outside, [("secret", 9.0, 1)])
    (root / "linked-run").symlink_to(outside, target_is_directory=True)
    (root / "train" / "events.out.tfevents.linked").symlink_to(secret)
    (tmp_path / "linked-root").symlink_to(root, target_is_directory=True)

    assert EventDirectoryWatcher(root).poll() == [point("train/loss", 1.0, 1)]
    assert EventDirectoryWatcher(tmp_path / "linked-root").poll() == []


def test_what_vanishes_or_cannot_be_read_is_skipped(tmp_path: Path) -> None:
    watcher = EventDirectoryWatcher(tmp_path / "logs")
    missing_root = watcher.poll()
    doomed = write_scalars(tmp_path / "logs" / "train", [("loss", 1.0, 1)])
    os.mkfifo(tmp_path / "logs" / "events.out.tfevents.fifo")
    (tmp_path / "logs" / "events.out.tfevents.dir").mkdir()
    first = watcher.poll()
    doomed.unlink()
    after_unlink = watcher.poll()
    write_scalars(tmp_path / "logs" / "eval", [("loss", 2.0, 2)])

    assert missing_root == []
    assert first == [point("train/loss", 1.0, 1)]
    assert after_unlink == []
    assert watcher.poll() == [point("eval/loss", 2.0, 2)]


def test_damaged_records_are_counted_across_files(tmp_path: Path) -> None:
    for run in ("train", "eval"):
        path = write_scalars(tmp_path / run, [("loss", 1.0, 1), ("loss", 2.0, 2)])
        damage(path, 1, lambda start, end: end - 1)
    watcher = EventDirectoryWatcher(tmp_path)

    points = watcher.poll()

    assert sorted(p.key for p in points) == ["eval/loss", "train/loss"]
    assert watcher.corrupt_records == 2
