"""Read the record types in a W&B transaction log (``run-<id>.wandb``), to tell a finished run from a cut one.

wandb 0.31 reads these files only in its Go core, so the tests parse the format here: a 7-byte header,
then 32 KiB blocks of LevelDB-log records (crc32, little-endian length, type: 1 full, 2 first, 3 middle,
4 last), each payload a ``wandb_internal_pb2.Record``.
"""
from __future__ import annotations

import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK, HEADER, RECORD_HEADER = 32768, 7, 7


def record_types(path: Path) -> list[str]:
    data = Path(path).read_bytes()
    kinds: list[str] = []
    offset, pending = HEADER, b""
    while offset + RECORD_HEADER <= len(data):
        left = BLOCK - offset % BLOCK
        if left < RECORD_HEADER:
            offset += left
            continue
        _, length, kind = struct.unpack("<IHB", data[offset:offset + RECORD_HEADER])
        payload = data[offset + RECORD_HEADER:offset + RECORD_HEADER + length]
        if len(payload) < length:
            break  # cut mid-record
        offset += RECORD_HEADER + length
        if kind == 0 and length == 0:
            break  # zero padding past the last record
        pending = payload if kind in (1, 2) else pending + payload
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            kinds.append(record.WhichOneof("record_type"))
            pending = b""
    return kinds
