"""Older home of the audio feature files' reader; they are `ernerf_ns.layout.audio_features`' now."""

from __future__ import annotations

from ernerf_ns.layout.audio_features import FEATURE_FILES, PREFERENCE, find_feature_file, load_feature_file

__all__ = ["FEATURE_FILES", "PREFERENCE", "find_feature_file", "load_feature_file"]
