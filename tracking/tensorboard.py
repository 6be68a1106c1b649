"""Scalars from the TensorBoard event files a job writes while it runs.

A job that logs with TensorBoard (``tensorboardX``, ``torch.utils.tensorboard``, Keras,
``tf.summary``) appends ``Event`` records to ``*tfevents*`` files under its output directory;
``EventDirectoryWatcher`` finds them and returns the scalar points each has gained since the
last poll, to be recorded as the job's metrics.

The standard library only: the server must not pull in TensorFlow or protobuf to read a format
this small. An event file is a sequence of TFRecords, each (little endian)::

    uint64 length | uint32 masked crc32c(length) | data[length] | uint32 masked crc32c(data)

and each record's data is an ``Event`` protocol buffer, decoded here by hand from the wire
format. Only scalars are read: ``Summary.Value.simple_value`` (the old form) and scalar tensors
(the new form, ``tf.summary.scalar`` in TensorFlow 2). Images, histograms, text and anything
else are skipped, and nothing a file holds makes reading fail: a damaged record is skipped and
counted.
"""

import os
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, NamedTuple

# What one read of one file takes at most, so that a huge file (or a job that logs images by
# the thousand) cannot stall the caller; the rest is read next time. A MiB of scalar events
# (some 20,000) takes about a second to decode and check in Python on a slow, busy machine.
MAX_BYTES_PER_READ = 1024 * 1024
# A single record bigger than one read is still read, whole, up to this size: TensorFlow 1's
# merged summaries put scalars and images in one event. Anything bigger is a graph or a batch
# of images, never a scalar worth the memory; it is skipped unread.
MAX_RECORD_BYTES = 16 * 1024 * 1024
# Run subdirectories are a level or two deep; the limit keeps a pathological tree from
# holding a file descriptor per level.
MAX_DEPTH = 16
# How far past a damaged header one read looks for the next good one (see _resync).
_RESYNC_WINDOW = 64 * 1024
# No real record is this long; a header that claims more is garbage, and saying so before
# computing its CRC keeps resynchronising cheap.
_PLAUSIBLE_LENGTH = 1 << 40

_HEADER = struct.Struct("<QI")  # data length, masked crc32c of the length's 8 bytes
_FOOTER = struct.Struct("<I")  # masked crc32c of the data
_OVERHEAD = _HEADER.size + _FOOTER.size

_VARINT, _I64, _LEN, _START_GROUP, _END_GROUP, _I32 = 0, 1, 2, 3, 4, 5
_U64 = (1 << 64) - 1

# The members of Event's `what` oneof: any of them after a summary replaces it.
_EVENT_WHAT = frozenset({3, 4, 5, 6, 7, 8, 9})
# The members of Summary.Value's `value` oneof, with the wire type each is written with.
_VALUE_KINDS = {2: _I32, 3: _LEN, 4: _LEN, 5: _LEN, 6: _LEN, 8: _LEN}
_SIMPLE_VALUE, _TENSOR = 2, 8
# A scalar tensor counts only if no plugin claims it, or the scalars plugin does: other plugins
# (hparams, pr_curves, custom ones) give single numbers meanings of their own.
_SCALAR_PLUGINS = frozenset({"", "scalars"})

_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


@dataclass(frozen=True)
class ScalarPoint:
    """One value of the scalar ``key`` at ``step``."""

    key: str
    step: int
    wall_time: float  # seconds since the epoch, as the writer stamped the event
    value: float  # NaN and infinities included: what to make of them is the caller's decision


# --- crc32c (Castagnoli) ------------------------------------------------------------------------

_CASTAGNOLI = 0x82F63B78  # the polynomial, bit-reversed: TFRecord's CRC is the reflected form


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_CASTAGNOLI if crc & 1 else 0)
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """The CRC-32C of ``data`` (zlib's crc32 uses another polynomial, so it cannot stand in)."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE  # a local: the loop runs once a byte
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc32c(data: bytes) -> int:
    # TFRecord stores CRCs rotated and offset, so that the CRC of data holding CRCs stays strong.
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _header_ok(chunk: bytes, position: int) -> bool:
    length, length_crc = _HEADER.unpack_from(chunk, position)
    end = position + 8
    return length < _PLAUSIBLE_LENGTH and _masked_crc32c(chunk[position:end]) == length_crc


# --- protocol buffer wire format ----------------------------------------------------------------


class _Malformed(Exception):
    """The bytes are not the message they should be."""


class _Field(NamedTuple):
    number: int
    wire: int
    varint: int  # the value of a varint field; 0 for the others
    payload: bytes  # the bytes of a fixed-width or length-delimited field; empty for varints


def _fields(data: bytes) -> Iterator[_Field]:
    """The fields of one message, in the order they were written, unknown ones included."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, position = _varint(data, position)
            yield _Field(number, wire, value, b"")
        else:
            start, position = _payload(data, position, number, wire)
            yield _Field(number, wire, 0, data[start:position])


def _varint(data: bytes, position: int) -> tuple[int, int]:
    # Field keys and most lengths take one byte: the fast path halves the time parsing takes.
    if position < len(data) and data[position] < 0x80:
        return data[position], position + 1
    value = shift = 0
    while shift < 70:  # ten bytes carry 64 bits; an eleventh is garbage, not a longer number
        if position >= len(data):
            raise _Malformed("cut off inside a varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value & _U64, position
        shift += 7
    raise _Malformed("varint longer than ten bytes")


def _payload(data: bytes, position: int, number: int, wire: int) -> tuple[int, int]:
    """Where the payload of a field that is not a varint starts and ends."""
    if wire == _LEN:
        size, position = _varint(data, position)
    elif wire in (_I64, _I32):
        size = 8 if wire == _I64 else 4
    elif wire == _START_GROUP:  # proto2's groups: obsolete, but a skippable wire type all the same
        return position, _skip_group(data, position, number)
    else:
        raise _Malformed(f"wire type {wire} of field {number}")
    if position + size > len(data):
        raise _Malformed("cut off inside a field")
    return position, position + size


def _skip_group(data: bytes, position: int, number: int) -> int:
    while True:
        key, position = _varint(data, position)
        if key & 7 == _END_GROUP:
            if key >> 3 != number:
                raise _Malformed("group ended by another field's end")
            return position
        if key & 7 == _VARINT:
            _, position = _varint(data, position)
        else:
            _, position = _payload(data, position, key >> 3, key & 7)


def _signed64(value: int) -> int:
    # int64 (and int32, sign-extended) varints carry negatives as two's complement in 64 bits.
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(payload: bytes) -> str:
    # A tag that is not UTF-8 is still a tag; dropping its points would hide the job's data.
    return payload.decode("utf-8", errors="replace")


# --- Event -> scalars ---------------------------------------------------------------------------


def _event_points(data: bytes) -> list[ScalarPoint]:
    """The scalar points of one serialized ``Event``. Raises _Malformed."""
    wall_time, step, summary = 0.0, 0, b""
    for field in _fields(data):
        if field.number == 1 and field.wire == _I64:
            wall_time = _DOUBLE.unpack(field.payload)[0]
        elif field.number == 2 and field.wire == _VARINT:
            step = _signed64(field.varint)
        elif field.number == 5 and field.wire == _LEN:
            summary += field.payload  # a message given twice is the two merged: concatenation
        elif field.number in _EVENT_WHAT:
            summary = b""
    return [ScalarPoint(tag, step, wall_time, value) for tag, value in _summary_scalars(summary)]


def _summary_scalars(summary: bytes) -> Iterator[tuple[str, float]]:
    for field in _fields(summary):
        if field.number == 1 and field.wire == _LEN:
            scalar = _value_scalar(field.payload)
            if scalar is not None:
                yield scalar


@dataclass
class _Value:
    """What of a ``Summary.Value`` decides whether it is a scalar."""

    tag: str = ""
    kind: int = 0  # the field number of the `value` oneof member it holds; 0: none
    simple_value: float = 0.0
    tensor: bytes = b""
    metadata: bytes = b""

    def take(self, field: _Field) -> None:
        if field.number == 1 and field.wire == _LEN:
            self.tag = _text(field.payload)
        elif field.number == 9 and field.wire == _LEN:
            self.metadata += field.payload
        elif _VALUE_KINDS.get(field.number) == field.wire:
            self._take_value(field)

    def _take_value(self, field: _Field) -> None:
        if self.kind != field.number:
            self.tensor = b""  # setting another member of a oneof clears the one before
        self.kind = field.number
        if field.number == _SIMPLE_VALUE:
            self.simple_value = _FLOAT.unpack(field.payload)[0]
        elif field.number == _TENSOR:
            self.tensor += field.payload


def _value_scalar(data: bytes) -> tuple[str, float] | None:
    value = _Value()
    for field in _fields(data):
        value.take(field)
    if value.kind == _SIMPLE_VALUE:
        return value.tag, value.simple_value
    if value.kind == _TENSOR and _plugin_name(value.metadata) in _SCALAR_PLUGINS:
        number = _tensor_scalar(value.tensor)
        return None if number is None else (value.tag, number)
    return None


def _plugin_name(metadata: bytes) -> str:
    """SummaryMetadata.plugin_data.plugin_name; empty when there is none."""
    name = ""
    for field in _fields(metadata):
        if field.number == 1 and field.wire == _LEN:
            for inner in _fields(field.payload):
                if inner.number == 1 and inner.wire == _LEN:
                    name = _text(inner.payload)
    return name


# --- TensorProto -> one number ------------------------------------------------------------------


@dataclass(frozen=True)
class _Numeric:
    """Where a TensorProto of one numeric dtype keeps its values."""

    field: int  # the repeated field holding them (float_val, int64_val, ...)
    content: struct.Struct  # one value's layout in tensor_content
    # Set for the float fields, whose values are fixed width; None for the varint ones.
    fixed: struct.Struct | None
    from_varint: Callable[[int], float]


def _half(bits: int) -> float:
    # half_val keeps each half's 16 bits in an int32.
    return float(struct.unpack("<e", (bits & 0xFFFF).to_bytes(2, "little"))[0])


def _integer(value: int) -> float:
    return float(_signed64(value))


_NUMERIC = {
    1: _Numeric(5, _FLOAT, _FLOAT, float),  # DT_FLOAT: float_val
    2: _Numeric(6, _DOUBLE, _DOUBLE, float),  # DT_DOUBLE: double_val
    3: _Numeric(7, struct.Struct("<i"), None, _integer),  # DT_INT32: int_val
    9: _Numeric(10, struct.Struct("<q"), None, _integer),  # DT_INT64: int64_val
    19: _Numeric(13, struct.Struct("<e"), None, _half),  # DT_HALF: half_val
}
_TENSOR_VALUE_FIELDS = frozenset(numeric.field for numeric in _NUMERIC.values())


def _tensor_scalar(tensor: bytes) -> float | None:
    """The value of a numeric tensor holding exactly one element; None for any other tensor."""
    dtype, shape, content = 0, b"", b""
    values: list[_Field] = []
    for field in _fields(tensor):
        if field.number == 1 and field.wire == _VARINT:
            dtype = field.varint
        elif field.number == 2 and field.wire == _LEN:
            shape += field.payload
        elif field.number == 4 and field.wire == _LEN:
            content = field.payload
        elif field.number in _TENSOR_VALUE_FIELDS:
            values.append(field)
    numeric = _NUMERIC.get(dtype)
    if numeric is None or _element_count(shape) != 1:
        return None
    if content:
        elements = _unpack_all(content, numeric.content)
    else:
        elements = _elements([f for f in values if f.number == numeric.field], numeric)
    # One value for one element; a single value for a bigger shape would mean "fill with it".
    return elements[0] if len(elements) == 1 else None


def _element_count(shape: bytes) -> int | None:
    """How many elements a TensorShapeProto holds; None if unknown (rank or any dimension)."""
    count = 1
    for field in _fields(shape):
        if field.number == 2 and field.wire == _LEN:
            size = _dim_size(field.payload)
            if size < 0:
                return None
            count *= size
        elif field.number == 3 and field.wire == _VARINT and field.varint:
            return None
    return count


def _dim_size(dim: bytes) -> int:
    size = 0
    for field in _fields(dim):
        if field.number == 1 and field.wire == _VARINT:
            size = _signed64(field.varint)
    return size


def _unpack_all(data: bytes, layout: struct.Struct) -> list[float]:
    if len(data) % layout.size:
        raise _Malformed("tensor content is not a whole number of values")
    return [float(value) for (value,) in layout.iter_unpack(data)]


def _elements(fields: list[_Field], numeric: _Numeric) -> list[float]:
    """The values of a repeated numeric field, packed (as writers do) or not (as parsers allow)."""
    values: list[float] = []
    for field in fields:
        if field.wire == _LEN and numeric.fixed is not None:
            values += _unpack_all(field.payload, numeric.fixed)
        elif field.wire == _LEN:
            values += [numeric.from_varint(v) for v in _packed_varints(field.payload)]
        elif field.wire == _VARINT and numeric.fixed is None:
            values.append(numeric.from_varint(field.varint))
        elif numeric.fixed is not None and len(field.payload) == numeric.fixed.size:
            values.append(float(numeric.fixed.unpack(field.payload)[0]))
    return values


def _packed_varints(payload: bytes) -> Iterator[int]:
    position = 0
    while position < len(payload):
        value, position = _varint(payload, position)
        yield value


# --- one file -----------------------------------------------------------------------------------


def _open_regular(path: str | Path, dir_fd: int | None = None, follow: bool = True) -> int | None:
    """A descriptor of the regular file at ``path``; None if there is none to read."""
    # O_NONBLOCK: opening a FIFO a job named *tfevents* must not wait for a writer forever.
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError:
        return None
    if stat.S_ISREG(os.fstat(fd).st_mode):
        return fd
    os.close(fd)
    return None


class EventFileReader:
    """Reads one event file incrementally: each call returns the scalars of the records that
    were completed since the call before.

    A record the writer has only partly written yet is left for the next call. A record whose
    CRC does not match is skipped and counted in ``corrupt_records``; so is one that is not an
    ``Event`` at all.
    """

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES_PER_READ) -> None:
        if max_bytes < 64:
            raise ValueError("max_bytes must leave room for at least a record's framing")
        self.path = path
        self.max_bytes = max_bytes
        self.offset = 0  # where the first record not yet read starts
        self.corrupt_records = 0
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file read
        self._in_sync = True  # False while looking for a good header past a damaged one

    def read_new(self) -> list[ScalarPoint]:
        """The scalar points of the records completed since the last call."""
        fd = _open_regular(self.path)
        if fd is None:
            return []
        with os.fdopen(fd, "rb") as file:
            return self.read_new_from(file)

    def read_new_from(self, file: BinaryIO) -> list[ScalarPoint]:
        """``read_new`` on this reader's file, which the caller opened: the watcher opens it
        relative to a directory it has checked, never through a symlink."""
        try:
            return self._read(file)
        except OSError:  # vanished, unreadable, a disk error: nothing to read this time
            return []

    def _read(self, file: BinaryIO) -> list[ScalarPoint]:
        size = self._note_identity(os.fstat(file.fileno()))
        file.seek(self.offset)
        chunk = file.read(self.max_bytes)
        points, used = self._points_in(chunk)
        if used == 0 and len(chunk) == self.max_bytes:
            points, used = self._read_large_record(file, chunk, size)
        self.offset += used
        return points

    def _note_identity(self, status: os.stat_result) -> int:
        # A file replaced under the same name (or cut shorter than what was read) is another
        # file: read it from its start.
        identity = (status.st_dev, status.st_ino)
        if identity != self._identity or status.st_size < self.offset:
            if self._identity is not None:
                self.offset, self._in_sync = 0, True
            self._identity = identity
        return status.st_size

    def _points_in(self, chunk: bytes) -> tuple[list[ScalarPoint], int]:
        """The points of the complete records ``chunk`` starts with, and how many bytes they
        (and any damaged stretch skipped) take."""
        points: list[ScalarPoint] = []
        position = 0
        while len(chunk) - position >= _HEADER.size:
            if not _header_ok(chunk, position):
                position, found = self._resync(chunk, position)
                if not found:
                    break
            self._in_sync = True
            end = position + _OVERHEAD + _HEADER.unpack_from(chunk, position)[0]
            if end > len(chunk):
                break  # still being written, or longer than what this read took
            points += self._record_points(chunk[position + _HEADER.size : end])
            position = end
        return points, position

    def _resync(self, chunk: bytes, position: int) -> tuple[int, bool]:
        """Past a damaged header, the position of the next good one and True; or how far
        this read looked and False.

        A damaged length cannot be trusted to find the next record, so the record is lost and
        the next header is searched for byte by byte. The search stops after _RESYNC_WINDOW
        bytes, to go on at the next read: it computes a CRC at almost every position.
        """
        if self._in_sync:
            self.corrupt_records += 1  # one however long the search: its true length is lost
            self._in_sync = False
        stop = min(position + _RESYNC_WINDOW, len(chunk) - _HEADER.size + 1)
        for candidate in range(position + 1, stop):
            if _header_ok(chunk, candidate):
                return candidate, True
        return stop, False

    def _record_points(self, record: bytes) -> list[ScalarPoint]:
        """The points of one record: its data, then the masked CRC of its data."""
        data, (data_crc,) = record[: -_FOOTER.size], _FOOTER.unpack_from(record, len(record) - 4)
        try:
            points = _event_points(data)
        except (_Malformed, RecursionError):  # RecursionError: groups nested in bad data
            self.corrupt_records += 1
            return []
        # Only records holding scalars have their CRC checked: computing it in Python costs far
        # more than parsing, and the images and histograms that make up most of a file are
        # dropped whether they are intact or not.
        if points and _masked_crc32c(data) != data_crc:
            self.corrupt_records += 1
            return []
        return points

    def _read_large_record(
        self, file: BinaryIO, chunk: bytes, size: int
    ) -> tuple[list[ScalarPoint], int]:
        """A record longer than ``max_bytes``: read whole, or skipped unread if it is longer
        than MAX_RECORD_BYTES. Either only once it is all written."""
        total = _OVERHEAD + _HEADER.unpack_from(chunk)[0]
        if self.offset + total > size:
            return [], 0  # still being written
        if total > MAX_RECORD_BYTES:
            return [], total
        file.seek(self.offset)
        return self._points_in(file.read(total))


# --- a directory of them ------------------------------------------------------------------------

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK


class EventDirectoryWatcher:
    """Finds the event files anywhere under ``root`` and reads what each has gained.

    A point's key is its tag for a file directly in ``root``, and ``run/tag`` for one in a
    subdirectory, as TensorBoard names runs (``logs/train/loss``). Symlinks are never followed,
    ``root`` itself included: a job controls what is under its output directory, and must not
    make Ferry read files outside it. Every directory and file is opened relative to its
    parent's descriptor with O_NOFOLLOW, so swapping one for a symlink between two steps of a
    poll does not help either.
    """

    def __init__(self, root: Path, max_bytes_per_file: int = MAX_BYTES_PER_READ) -> None:
        self.root = root
        self.max_bytes_per_file = max_bytes_per_file
        self._readers: dict[str, EventFileReader] = {}  # by path relative to root
        self._corrupt_in_gone_files = 0
        self._complete_walk = True

    @property
    def corrupt_records(self) -> int:
        """How many damaged records were skipped, in all the files read so far."""
        return self._corrupt_in_gone_files + sum(r.corrupt_records for r in self._readers.values())

    def poll(self) -> list[ScalarPoint]:
        """The scalar points the event files under ``root`` gained since the last poll."""
        seen: set[str] = set()
        self._complete_walk = True
        fd = _open_directory(str(self.root))
        if fd is None:
            return []
        try:
            points = self._poll_directory(fd, (), seen)
        finally:
            os.close(fd)
        self._forget_gone(seen)
        return points

    def _poll_directory(
        self, dir_fd: int, parts: tuple[str, ...], seen: set[str]
    ) -> list[ScalarPoint]:
        points: list[ScalarPoint] = []
        for entry in self._entries(dir_fd):
            if entry.is_dir(follow_symlinks=False) and len(parts) < MAX_DEPTH:
                points += self._poll_subdirectory(dir_fd, (*parts, entry.name), seen)
            # Symlinks and FIFOs too: _open_regular refuses them, and unlike a check made
            # here, it cannot be raced by swapping the file for a symlink in between.
            elif "tfevents" in entry.name:
                seen.add("/".join((*parts, entry.name)))
                points += self._poll_file(dir_fd, parts, entry.name)
        return points

    def _entries(self, dir_fd: int) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(dir_fd) as entries:
                return sorted(entries, key=lambda entry: entry.name)  # the same order every poll
        except OSError:
            self._complete_walk = False
            return []

    def _poll_subdirectory(
        self, parent_fd: int, parts: tuple[str, ...], seen: set[str]
    ) -> list[ScalarPoint]:
        fd = _open_directory(parts[-1], parent_fd)
        if fd is None:
            self._complete_walk = False
            return []
        try:
            return self._poll_directory(fd, parts, seen)
        finally:
            os.close(fd)

    def _poll_file(self, dir_fd: int, parts: tuple[str, ...], name: str) -> list[ScalarPoint]:
        relative = "/".join((*parts, name))
        fd = _open_regular(name, dir_fd, follow=False)
        if fd is None:
            return []
        reader = self._readers.get(relative)
        if reader is None:
            reader = EventFileReader(self.root / relative, self.max_bytes_per_file)
            self._readers[relative] = reader
        with os.fdopen(fd, "rb") as file:
            points = reader.read_new_from(file)
        prefix = "/".join(parts)
        return [replace(p, key=f"{prefix}/{p.key}") for p in points] if prefix else points

    def _forget_gone(self, seen: set[str]) -> None:
        # A file that is gone and comes back under its name is a new file, to read from its
        # start. Only a walk that listed every directory can tell what is gone: after one that
        # could not, forgetting would read files again from their start, duplicating points.
        if not self._complete_walk:
            return
        for relative in self._readers.keys() - seen:
            self._corrupt_in_gone_files += self._readers.pop(relative).corrupt_records


def _open_directory(path: str, dir_fd: int | None = None) -> int | None:
    try:
        return os.open(path, _DIRECTORY_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
