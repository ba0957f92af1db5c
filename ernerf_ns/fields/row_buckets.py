"""Sample counts rounded up to a few repeating sizes, for the matrix products of the per-sample networks.

A training step's sample count changes every step. cuBLAS picks its kernel per problem shape and remembers
recent shapes, so a new row count costs a fresh heuristic search on the host for every matrix product of
the step (measured on an H100: about 120 µs of host time per product, 40 products a step).
"""

from __future__ import annotations

BUCKETS_PER_OCTAVE_LOG2 = 4
"""16 sizes per doubling: at most 1/16 more rows."""


def bucket_rows(count: int) -> int:
    """`count` rounded up to a multiple of 2^(floor(log2 count) - 4), so nearby counts share a size."""
    if count < 1 << (BUCKETS_PER_OCTAVE_LOG2 + 4):
        return count
    quantum = 1 << (count.bit_length() - 1 - BUCKETS_PER_OCTAVE_LOG2)
    return -(-count // quantum) * quantum
