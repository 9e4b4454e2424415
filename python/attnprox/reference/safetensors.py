"""A small reader and writer for the safetensors format, so that Hugging Face model directories load without
the `safetensors` package (Debian has none).

Format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length n, n bytes of JSON
header `{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}`, then the
tensor bytes, offsets relative to the end of the header, row-major, little-endian.
"""
import json
import os
import struct
from typing import Dict, Iterable, Optional

import torch

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    """A file that does not follow the safetensors format."""


def read_header(path: str) -> dict:
    """The JSON header of a safetensors file, checked for consistency with the file size; the byte offset of
    the tensor data is stored under the key `__data_start__`."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise SafetensorsError(f"{path}: {size} bytes, too short for a safetensors file (8-byte header length)")
        (n,) = struct.unpack("<Q", prefix)
        if n > min(_MAX_HEADER, size - 8):
            raise SafetensorsError(f"{path}: header length {n} does not fit in a file of {size} bytes")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SafetensorsError(f"{path}: header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    data_size = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _DTYPES:
            raise SafetensorsError(f"{path}: tensor '{name}' has unsupported dtype {dtype!r}")
        if not (isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)):
            raise SafetensorsError(f"{path}: tensor '{name}' has an invalid shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and 0 <= offsets[0] <= offsets[1] <= data_size):
            raise SafetensorsError(f"{path}: tensor '{name}' has data offsets {offsets!r} outside the "
                                   f"{data_size} data bytes")
        numel = 1
        for s in shape:
            numel *= s
        expected = numel * torch.empty((), dtype=_DTYPES[dtype]).element_size()
        if offsets[1] - offsets[0] != expected:
            raise SafetensorsError(f"{path}: tensor '{name}' of shape {shape} and dtype {dtype} needs {expected} "
                                   f"bytes, its offsets give {offsets[1] - offsets[0]}")
    header["__data_start__"] = 8 + n
    return header


def load_file(path: str, names: Optional[Iterable[str]] = None) -> Dict[str, torch.Tensor]:
    """Tensors of a safetensors file (all, or those in `names`), as CPU torch tensors that own their memory."""
    header = read_header(path)
    data_start = header.pop("__data_start__")
    header.pop("__metadata__", None)
    wanted = None if names is None else set(names)
    out = {}
    with open(path, "rb") as f:
        for name, info in header.items():
            if wanted is not None and name not in wanted:
                continue
            begin, end = info["data_offsets"]
            f.seek(data_start + begin)
            raw = bytearray(f.read(end - begin))
            dtype = _DTYPES[info["dtype"]]
            if raw:
                t = torch.frombuffer(raw, dtype=dtype).clone()
            else:
                t = torch.empty(0, dtype=dtype)
            out[name] = t.reshape(info["shape"])
    return out


def save_file(tensors: Dict[str, torch.Tensor], path: str, metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes tensors in the safetensors format (what `save_pretrained` writes), in name order."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        if t.dtype not in _NAMES:
            raise SafetensorsError(f"tensor '{name}' has dtype {t.dtype}, which safetensors cannot store")
        blob = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format aligns the data to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def load_model_dir(model_dir: str) -> Dict[str, torch.Tensor]:
    """All weights of a Hugging Face model directory: `model.safetensors`, or the shards listed in
    `model.safetensors.index.json`."""
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(single):
        return load_file(single)
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f).get("weight_map", {})
        out: Dict[str, torch.Tensor] = {}
        for shard in sorted(set(weight_map.values())):
            out.update(load_file(os.path.join(model_dir, shard)))
        return out
    raise FileNotFoundError(f"{model_dir}: no model.safetensors or model.safetensors.index.json "
                            "(only safetensors weights are read)")
