"""tiny-cuda-nn's 2D grid hashing constants, shared by the PyTorch hash grid and the Triton kernels so that
tables (and checkpoints) move between them and tcnn."""

UINT32_MASK = 0xFFFFFFFF
"""tcnn computes indices in uint32; we compute in int64 and keep the low 32 bits."""
HASH_PRIME_Y = 2654435761
"""tcnn's `coherent_prime_hash` multiplies dimension 0 by 1 (memory coherence) and dimension 1 by this."""
MAX_DENSE_RESOLUTION_2D = 0xFFFF
"""Above this resolution tcnn skips the dense stride (it would overflow uint32) and always hashes."""
