"""Hash tables as checkpoints store them: float16, bytes split by significance, xz-compressed (lossless).

A trained table's float16 values spread over a few binades, so the high byte of each (sign, exponent, top
mantissa bits) repeats a lot while the low byte is noise. Storing all high bytes, then all low bytes, lets
xz find that: 15–20% fewer bytes than plain float16 for ER-NeRF's tables (measured on German_20s after
800 CPU steps), with every value kept exactly.
"""

from __future__ import annotations

import lzma

import numpy as np
import torch
from jaxtyping import Float, UInt8
from torch import Tensor

XZ_PRESET = 6
"""xz's default: about 0.8 s for the 2.2 MB torso table, once per checkpoint."""


def fits_half(table: Tensor) -> bool:
    """Whether every entry is within float16's range (else the checkpoint keeps float32)."""
    return bool(table.detach().abs().max() <= torch.finfo(torch.float16).max)


def pack_half(table: Float[Tensor, " num"]) -> UInt8[Tensor, " num_bytes"]:
    """The table rounded to float16, high bytes then low bytes, xz-compressed, as a uint8 CPU tensor."""
    halves = table.detach().reshape(-1).cpu().numpy().astype("<f2").view(np.uint8).reshape(-1, 2)
    planes = np.concatenate([halves[:, 1], halves[:, 0]])
    return torch.frombuffer(bytearray(lzma.compress(planes.tobytes(), preset=XZ_PRESET)), dtype=torch.uint8)


def unpack_half(packed: UInt8[Tensor, " num_bytes"], num: int) -> Float[Tensor, " num"]:
    """Inverse of `pack_half` for a table of `num` entries, as float32; a ValueError if the bytes are not one."""
    try:
        planes = np.frombuffer(lzma.decompress(packed.cpu().numpy().tobytes()), dtype=np.uint8)
    except lzma.LZMAError as err:
        raise ValueError(f"hash table bytes are not an xz stream ({err})") from err
    if planes.size != 2 * num:
        raise ValueError(f"hash table holds {planes.size // 2} entries, the grid has {num}")
    halves = np.stack([planes[num:], planes[:num]], axis=1).reshape(-1).view("<f2")
    return torch.from_numpy(halves.astype(np.float32))
