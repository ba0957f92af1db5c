"""`ernerf-process`: a raw video → an ER-NeRF training folder, offline.

One module per step (frames, audio track, audio features, landmarks, tracking, parsing, background,
torso, blink, transforms); `steps` holds one record per step, `runner` runs them in order and resumes,
`config` is the command line's options and `cli` the tyro entry point.
"""
