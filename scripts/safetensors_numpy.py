"""Minimal safetensors reader/writer for numpy arrays, for the repository's fixture and example scripts
(Debian 12 has no python3-safetensors). Format: 8-byte little-endian header length N, N bytes of JSON
{name: {dtype, shape, data_offsets}, "__metadata__": {str: str}} padded with spaces to a multiple of 8,
then the tensors' little-endian bytes in order."""
import json
import struct

import numpy as np

_DTYPES = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<i4"): "I32", np.dtype("<i8"): "I64"}


def save(path, tensors, metadata=None):
    """tensors: dict name -> array (float32/float64/int32/int64), written in insertion order."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        data = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _DTYPES[array.dtype.newbyteorder("<")], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def load(path):
    """Returns (dict name -> array, metadata dict)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    metadata = header.pop("__metadata__", {})
    names = {v: k for k, v in _DTYPES.items()}
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(blob[8 + n + begin:8 + n + end], dtype=names[info["dtype"]]).reshape(info["shape"])
    return tensors, metadata
