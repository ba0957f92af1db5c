"""`ernerf-process`: a raw video → an ER-NeRF training folder, offline.

One module per step (frames, audio track, audio features, landmarks, tracking, parsing, background,
torso, blink, transforms); `pipeline` orders them and `cli` is the tyro entry point.
"""
