"""Live mode: speech streamed in, lip-synced frames out in real time."""
