"""ER-NeRF's dataset folder format in one place: every path of a folder, and each file kind's reader and writer.

The dataparser, `ernerf-process`, `ernerf-synthetic` and `ernerf-render` all read and write folders through
these modules, so a file written by one tool is read back by the others exactly as it was meant.
"""
