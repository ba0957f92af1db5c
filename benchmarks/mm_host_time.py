"""Host time of one bf16 matrix product of the head field's shape, for row counts that change every call
(a training step's sample count), repeat, or are rounded up by `bucket_rows`; prints one result line.

    python benchmarks/mm_host_time.py          # GPU machine

The training step is bound by host time on a GPU; this isolates what cuBLAS's per-shape choice costs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import tyro

from ernerf_ns.fields.row_buckets import bucket_rows


@dataclass
class MMHostTime:
    rows: int = 1_200_000
    """Typical samples per step."""
    calls: int = 300
    """Products timed per case."""

    def host_us(self, counts: list[int], x: torch.Tensor, w: torch.Tensor) -> float:
        # Warm-up on a row count of no case, so that "a new row count each call" stays new for every call.
        for _ in range(5):
            x[: self.rows // 2] @ w
        torch.cuda.synchronize()
        start = time.perf_counter()
        for count in counts:
            x[:count] @ w
        seconds = time.perf_counter() - start
        torch.cuda.synchronize()
        return seconds / len(counts) * 1e6

    def main(self) -> None:
        x = torch.randn(self.rows * 2, 64, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(64, 64, device="cuda", dtype=torch.bfloat16)
        drifting = [self.rows + 997 * i for i in range(self.calls)]
        new = self.host_us(drifting, x, w)
        same = self.host_us([self.rows] * self.calls, x, w)
        bucketed = self.host_us([bucket_rows(c) for c in [self.rows + 991 * i + 3 for i in range(self.calls)]], x, w)
        print(
            f"mm_host_time: {new:.1f} us per bf16 [{self.rows:,}x64]@[64x64] product with a new row count each call, "
            f"{same:.1f} us with one row count, {bucketed:.1f} us with bucket_rows counts "
            f"({new / bucketed:.2f}x); {torch.cuda.get_device_name()}"
        )


if __name__ == "__main__":
    tyro.cli(MMHostTime).main()
