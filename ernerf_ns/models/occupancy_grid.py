"""nerfacc's occupancy grid, stored in checkpoints as one bit per cell.

nerfacc keeps a float per cell (`occs`, the running maxima its updates compare against) and a bool per cell
(`binaries`, what sampling reads): 10.5 MB for ER-NeRF's 128³ grid, more than all the model's weights.
Renders need only the bits; a resumed run needs the floats only through their mean (the update's threshold
is the smaller of that mean and `occ_thre`) and through the occupied cells, which every update evaluates
anew. So a checkpoint holds the bits packed eight to a byte (xz-compressed) and the mean float of the occupied
and of the empty cells; loading gives every cell its side's mean, which keeps the bits, the mean and the
threshold.
"""

from __future__ import annotations

import lzma

import nerfacc
import numpy as np
import torch
from jaxtyping import Bool, UInt8
from torch import Tensor

BITS_KEY = "binary_bits_xz"
"""State-dict entry of the packed cells (C order of `binaries`, most significant bit first), xz-compressed: the
occupied cells are one blob, so 262 kB of bits become about 40 kB."""
RAW_BITS_KEY = "binary_bits"
"""The same bits uncompressed, as checkpoints of 2026-12-05 hold them."""
MEANS_KEY = "occupied_and_empty_means"
"""State-dict entry of the mean `occs` value over occupied and over empty cells (a float pair)."""


def pack_bits(binaries: Bool[Tensor, "..."]) -> UInt8[Tensor, " num_bytes"]:
    """Cells as bits, eight to a byte."""
    return torch.from_numpy(np.packbits(binaries.detach().cpu().numpy().ravel()))


def compress_bits(bits: UInt8[Tensor, " num_bytes"]) -> UInt8[Tensor, " compressed_bytes"]:
    """Packed bits, xz-compressed."""
    return torch.frombuffer(bytearray(lzma.compress(bits.numpy().tobytes())), dtype=torch.uint8)


def decompress_bits(compressed: UInt8[Tensor, " compressed_bytes"]) -> UInt8[Tensor, " num_bytes"]:
    """Inverse of `compress_bits`."""
    return torch.from_numpy(np.frombuffer(lzma.decompress(compressed.cpu().numpy().tobytes()), dtype=np.uint8).copy())


def unpack_bits(bits: UInt8[Tensor, " num_bytes"], shape: torch.Size) -> Bool[Tensor, "..."]:
    """Inverse of `pack_bits` for a grid of `shape`."""
    count = int(np.prod(shape))
    cells = np.unpackbits(bits.cpu().numpy(), count=count).astype(bool)
    return torch.from_numpy(cells).reshape(shape)


class PackedOccupancyGrid(nerfacc.OccGridEstimator):
    """`nerfacc.OccGridEstimator` whose state dict holds packed bits instead of `occs` and `binaries`.

    Checkpoints in nerfacc's own layout (float `occs`, bool `binaries`) load unchanged."""

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        occupied = self.binaries.reshape(-1)
        occs = self.occs.detach()
        means = [occs[mask].mean() if mask.any() else occs.new_zeros(()) for mask in (occupied, ~occupied)]
        del destination[prefix + "occs"], destination[prefix + "binaries"]
        destination[prefix + BITS_KEY] = compress_bits(pack_bits(self.binaries))
        destination[prefix + MEANS_KEY] = torch.stack(means)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        if prefix + BITS_KEY in state_dict:
            state_dict[prefix + RAW_BITS_KEY] = decompress_bits(state_dict.pop(prefix + BITS_KEY))
        if prefix + RAW_BITS_KEY in state_dict:
            binaries = unpack_bits(state_dict.pop(prefix + RAW_BITS_KEY), self.binaries.shape)
            occupied_mean, empty_mean = state_dict.pop(prefix + MEANS_KEY).float().cpu()
            state_dict[prefix + "binaries"] = binaries
            state_dict[prefix + "occs"] = torch.where(binaries.reshape(-1), occupied_mean, empty_mean)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
