"""Every path of an ER-NeRF dataset folder, named once."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from ernerf_ns.layout.audio_features import FEATURE_FILES

Split = Literal["train", "val"]


class PortraitFolder:
    """The files of one talking-portrait folder, as ER-NeRF's preprocessing (and `ernerf-process`) lays them out.

    Frames are numbered from 0 without padding: `ori_imgs/<i>.jpg` and its landmarks `ori_imgs/<i>.lms`,
    `parsing/<i>.png`, `gt_imgs/<i>.jpg` (frame over a clean background) and `torso_imgs/<i>.png` (RGBA).
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"PortraitFolder({str(self.root)!r})"

    def transforms(self, split: Split) -> Path:
        """`transforms_train.json` / `transforms_val.json`: intrinsics and per-frame camera poses."""
        return self.root / f"transforms_{split}.json"

    # -- per-frame files ---------------------------------------------------------------------------
    @property
    def frames_dir(self) -> Path:
        return self.root / "ori_imgs"

    @property
    def parsing_dir(self) -> Path:
        return self.root / "parsing"

    @property
    def gt_dir(self) -> Path:
        return self.root / "gt_imgs"

    @property
    def torso_dir(self) -> Path:
        return self.root / "torso_imgs"

    def frame_suffixes(self, directory: Path) -> tuple[str, ...]:
        """The kinds of per-frame file the layout puts in one of `frame_dirs`."""
        return {
            self.frames_dir: (".jpg", ".lms"),
            self.parsing_dir: (".png",),
            self.gt_dir: (".jpg",),
            self.torso_dir: (".png",),
        }[directory]

    def clear_frames(self, directory: Path) -> None:
        """`clear_frames` of one of `frame_dirs`, for the kinds of file the layout puts there."""
        clear_frames(directory, self.frame_suffixes(directory))

    @property
    def frame_dirs(self) -> tuple[Path, ...]:
        """The folders that hold one file (or two) per frame."""
        return self.frames_dir, self.parsing_dir, self.gt_dir, self.torso_dir

    def frame(self, img_id: int) -> Path:
        """The video frame as extracted (after any crop and resize)."""
        return self.frames_dir / f"{img_id}.jpg"

    @property
    def frame_pattern(self) -> Path:
        """`frame`'s paths as an ffmpeg output pattern (`ori_imgs/%d.jpg`, numbered from 0 with -start_number 0)."""
        return self.frames_dir / "%d.jpg"

    def count_frames(self) -> int:
        """Number of consecutive frames from 0 (`frame(0)`, `frame(1)`, ...) on disk."""
        count = 0
        while self.frame(count).is_file():
            count += 1
        return count

    def landmarks(self, img_id: int) -> Path:
        return self.frames_dir / f"{img_id}.lms"

    def parsing(self, img_id: int) -> Path:
        return self.parsing_dir / f"{img_id}.png"

    def gt(self, img_id: int) -> Path:
        """The training target: the frame with its background replaced by `bc.jpg`."""
        return self.gt_dir / f"{img_id}.jpg"

    def torso(self, img_id: int) -> Path:
        return self.torso_dir / f"{img_id}.png"

    # -- whole-clip files --------------------------------------------------------------------------
    @property
    def background(self) -> Path:
        return self.root / "bc.jpg"

    @property
    def au_csv(self) -> Path:
        """OpenFace-style blink intensities (AU45_r), one row per frame."""
        return self.root / "au.csv"

    @property
    def audio(self) -> Path:
        """The sound track, 16 kHz mono."""
        return self.root / "aud.wav"

    def audio_features(self, extractor: str) -> Path:
        """`aud.npy`, `aud_ds.npy`, `aud_eo.npy` or `aud_hu.npy` (see `layout.audio_features.FEATURE_FILES`)."""
        if extractor not in FEATURE_FILES:
            raise ValueError(f"unknown audio features '{extractor}'; choose one of {sorted(FEATURE_FILES)}")
        return self.root / FEATURE_FILES[extractor]

    @property
    def track_params(self) -> Path:
        """The tracker's head poses and focal length (`layout.track_params`)."""
        return self.root / "track_params.pt"

    @property
    def face_mesh(self) -> Path:
        """`ernerf-process`'s face mesh of every frame [F, 478, 3] (pixels), kept for tracking, parsing and blink."""
        return self.root / "face_mesh.npy"

    @property
    def crop_record(self) -> Path:
        """Where the frames were cut from the input video (`layout.crop`)."""
        return self.root / "crop.json"

    @property
    def video(self) -> Path:
        """The input video kept beside the data, named after the folder (ER-NeRF's `<name>/<name>.mp4`)."""
        return self.root / f"{self.root.resolve().name}.mp4"

    @property
    def process_manifest(self) -> Path:
        """`ernerf-process`'s record of its finished steps."""
        return self.root / ".ernerf_process.json"


def clear_frames(folder: Path, suffixes: Iterable[str]) -> None:
    """Remove the numbered frame files an earlier run wrote in `folder`, so that rewriting it with fewer frames
    leaves no stale ones (`ernerf-process` steps and `ernerf-synthetic --overwrite` both rewrite folders).

    Only the names the layout gives frames go: `<i><suffix>` for i = 0, 1, ... while any of them exists (frames
    are written in order from 0, so they form an unbroken sequence, even an interrupted run's). A user's own
    files in the folder (`mine.lms`, `holiday.png`) are never touched.
    """
    suffixes = tuple(suffixes)
    i = 0
    while found := [p for p in (folder / f"{i}{s}" for s in suffixes) if p.is_file()]:
        for path in found:
            path.unlink()
        i += 1
