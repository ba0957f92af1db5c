"""Forward+backward time of ER-NeRF's tri-plane hash encoding on 2^20 points; prints one result line.

    python benchmarks/hash_grid_speed.py

Compares our fused Triton kernel (the CUDA default when tinycudann is absent) against our PyTorch lookup,
eager and under torch.compile, and tinycudann when it is importable, in the same run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import tyro

from ernerf_ns.fields.triplane_encoding import TriPlaneHashEncoding


def _time(encoding: TriPlaneHashEncoding, points: torch.Tensor, repeats: int) -> float:
    """Median milliseconds of one forward + backward."""
    times = []
    for _ in range(repeats + 3):
        if points.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        encoding(points).square().sum().backward()
        if points.is_cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times[3:])[repeats // 2]


@dataclass
class HashGridSpeed:
    log2_points: int = 20
    """Points per call, log2."""
    repeats: int = 20
    """Timed calls per variant (median reported)."""

    def main(self) -> None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        points = torch.rand(2**self.log2_points, 3, device=device) * 2 - 1
        encoding = TriPlaneHashEncoding(implementation="torch").to(device)
        encoding.use_compile = False
        eager = _time(encoding, points, self.repeats)
        line = f"hash_grid_speed tri-plane 12 levels fwd+bwd {points.shape[0]} points on {device}: eager {eager:.1f} ms"
        if device == "cuda":
            encoding.use_compile = True
            compiled = _time(encoding, points, self.repeats)
            line += f", torch.compile {compiled:.1f} ms ({eager / compiled:.1f}x)"
            fused = TriPlaneHashEncoding(implementation="triton").to(device)
            triton_ms = _time(fused, points, self.repeats)
            line += f", Triton {triton_ms:.2f} ms ({eager / triton_ms:.1f}x eager)"
            try:
                import tinycudann  # noqa: F401

                tcnn_encoding = TriPlaneHashEncoding(implementation="tcnn").to(device)
                line += f", tinycudann {_time(tcnn_encoding, points, self.repeats):.1f} ms"
            except ImportError:
                line += ", tinycudann not installed"
        print(line)


if __name__ == "__main__":
    tyro.cli(HashGridSpeed).main()
