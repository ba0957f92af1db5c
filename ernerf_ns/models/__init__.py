"""ER-NeRF models."""
