"""A batch's rows for one ClickHouse table, turned into Arrow as they come and inserted as one table.

ClickHouse reads an Arrow table straight into its columns, embedded or over HTTP, where rows as
Python lists are first encoded value by value by clickhouse-connect. When that encoding happens
matters as much: at insert time a 50,000-row batch has left the CPU's caches, and turning hydra
events into Arrow cost ~8 us more per row than in chunks of `CHUNK_ROWS` right after decoding (a
chunk's payloads are still cached). Through `Lander.handle` and `flush` (200,000 hydra events in
500-event envelopes, 50,000-row batches, this 2-core machine) the lander's CPU per event went from
64 to 45 us (medians of 15 passes; 55 without the events insert setting in `sinks`).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

#: Rows converted at a time: small enough that a chunk's payloads are still in the CPU's caches,
#: large enough that the fixed cost of an Arrow array per column is spread thin.
CHUNK_ROWS = 1_024

_UINT32_LISTS = pa.list_(pa.uint32())


class Block:
    """The rows of one table gathered for one insert; `to_arrow` gives them as one Arrow table.

    >>> block = Block(pa.schema([("account_id", pa.string()), ("prompt_minhash", pa.list_(pa.uint32()))]))
    >>> block.add(["acct-1", [7, 8]])
    >>> block.add(["acct-2", [9]])
    >>> block.rows, block.to_arrow().to_pylist()
    (2, [{'account_id': 'acct-1', 'prompt_minhash': [7, 8]}, {'account_id': 'acct-2', 'prompt_minhash': [9]}])
    """

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.rows = 0
        self._chunks: list[pa.RecordBatch] = []
        self._pending: list[Sequence[Any]] = []

    def add(self, row: Sequence[Any]) -> None:
        """Append one row, its values in the order of the schema's columns."""
        self._pending.append(row)
        self.rows += 1
        if len(self._pending) == CHUNK_ROWS:
            self._convert_pending()

    def to_arrow(self) -> pa.Table:
        """All rows as one table, in chunks of `CHUNK_ROWS`.

        ClickHouse squashes the chunks of one insert into one block, written as one part (up to
        its `min_insert_block_size_rows` and `_bytes`, ~1M rows or 256 MiB, far above a batch), as
        it did the 1-2 MB blocks clickhouse-connect cut a batch of rows into.
        """
        self._convert_pending()
        return pa.Table.from_batches(self._chunks, schema=self.schema)

    def _convert_pending(self) -> None:
        if not self._pending:
            return
        columns = zip(*self._pending, strict=True)
        arrays = [_array(list(values), field.type) for values, field in zip(columns, self.schema, strict=True)]
        self._chunks.append(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self._pending = []


def _array(values: list[Any], arrow_type: pa.DataType) -> pa.Array:
    if arrow_type == _UINT32_LISTS:
        return _uint32_lists(values)
    return pa.array(values, type=arrow_type)


def _uint32_lists(lists: list[list[int]]) -> pa.Array:
    """Lists of unsigned 32-bit integers (MinHash signatures), the bulk of an event's values.

    `pa.array` converts nested Python lists one integer at a time; `array.extend` copies a whole
    list in C, and the buffers it fills are handed to Arrow as they are.
    """
    values = array("I")  # C unsigned int: 4 bytes on every platform CPython is built for
    offsets = array("i", [0])
    for item in lists:
        values.extend(item)
        offsets.append(len(values))
    return pa.ListArray.from_arrays(
        pa.Array.from_buffers(pa.int32(), len(offsets), [None, pa.py_buffer(offsets)]),
        pa.Array.from_buffers(pa.uint32(), len(values), [None, pa.py_buffer(values)]),
    )
