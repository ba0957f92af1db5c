"""DataParser for ER-NeRF's dataset layout (made by ER-NeRF's preprocessing or `ernerf-process`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Type

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataParser, DataParserConfig, DataparserOutputs
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.plugins.registry_dataparser import DataParserSpecification
from nerfstudio.utils.rich_utils import CONSOLE

from ernerf_ns.layout.audio_features import find_feature_file, load_feature_file
from ernerf_ns.layout.blink import eye_openness, read_blink
from ernerf_ns.layout.errors import DatasetError
from ernerf_ns.layout.folder import PortraitFolder
from ernerf_ns.layout.images import read_image_size
from ernerf_ns.layout.landmarks import landmark_rects, read_landmarks
from ernerf_ns.layout.transforms import read_transforms


@dataclass
class TalkingPortraitDataParserConfig(DataParserConfig):
    """A talking-portrait folder in ER-NeRF's layout."""

    _target: Type = field(default_factory=lambda: TalkingPortraitDataParser)
    data: Path = Path("data/portrait")
    """Dataset folder (holds transforms_train.json, gt_imgs/, aud*.npy, ...)."""
    audio_features: Optional[Literal["logmel", "deepspeech", "esperanto", "hubert"]] = None
    """Which audio feature file to read (aud.npy, aud_ds.npy, aud_eo.npy, aud_hu.npy); default: the first present."""
    scale: float = 4.0
    """Multiplier on camera translations (ER-NeRF's `--scale`, 4)."""
    bound: float = 1.0
    """Half-extent of the head box in x and y after scaling (ER-NeRF's `--bound`); z extent is half of it."""
    eye_smoothing: int = 3
    """Window (frames) over which blink values are averaged, as ER-NeRF's `--smooth_eye`; 1 turns it off."""
    max_val_frames: int = 100
    """Frames of transforms_val.json used for evaluation during training (ER-NeRF uses 100); ns-eval uses all."""


@dataclass
class TalkingPortraitDataParser(DataParser):
    """Reads transforms, images, landmarks, blinks and audio features of one speaker."""

    config: TalkingPortraitDataParserConfig

    _told_blinks_constant = False
    """Whether a missing au.csv was reported; ns-train asks one parser for train then val, and hears it once."""

    def _generate_dataparser_outputs(self, split: str = "train") -> DataparserOutputs:
        """Reads and checks every file the split uses, so a broken folder fails here, before any training step."""
        folder = PortraitFolder(self.config.data)
        root = folder.root
        if not root.is_dir():
            raise DatasetError(f"{root}: dataset folder not found")
        json_path = folder.transforms("train" if split == "train" else "val")
        meta = read_transforms(json_path)
        frames = meta["frames"]
        if split == "val":
            frames = frames[: self.config.max_val_frames]

        img_ids = np.array([int(f["img_id"]) for f in frames])
        aud_ids = np.array([int(f.get("aud_id", f["img_id"])) for f in frames])
        image_filenames = [folder.gt(i) for i in img_ids]
        missing = [p for p in image_filenames if not p.is_file()]
        if missing:
            raise DatasetError(
                f"{missing[0]}: image of a frame listed in {json_path.name} not found "
                f"({len(missing)} of {len(image_filenames)} missing)"
            )
        focal, cx, cy = float(meta["focal_len"]), float(meta["cx"]), float(meta["cy"])
        width, height = int(round(2 * cx)), int(round(2 * cy))
        check_frame_sizes(image_filenames, json_path, (width, height))

        extractor, feature_path = find_feature_file(root, self.config.audio_features)
        audio = load_feature_file(feature_path)
        if aud_ids.max() >= len(audio):
            raise DatasetError(
                f"{feature_path}: audio features cover {len(audio)} frames but {json_path.name} "
                f"asks for frame {aud_ids.max()} (audio shorter than the video)"
            )

        eye = self._eye_values(folder, img_ids)
        rects = self._landmark_rects(folder, img_ids)

        c2w = torch.tensor(np.array([f["transform_matrix"] for f in frames], dtype=np.float32))
        c2w[:, :3, 3] *= self.config.scale
        num = len(frames)
        # Only training frames own an individual code; -1 asks the model for its fixed render-time code.
        frame_index = torch.arange(num) if split == "train" else torch.full((num,), -1)
        cameras = Cameras(
            camera_to_worlds=c2w[:, :3, :4],
            fx=focal,
            fy=focal,
            cx=cx,
            cy=cy,
            width=width,
            height=height,
            camera_type=CameraType.PERSPECTIVE,
            metadata={
                "frame_index": frame_index[:, None].float(),
                "audio_index": torch.from_numpy(aud_ids)[:, None].float(),
                "eye": torch.from_numpy(eye)[:, None],
            },
        )
        b = self.config.bound
        scene_box = SceneBox(aabb=torch.tensor([[-b, -b, -b / 2], [b, b, b / 2]], dtype=torch.float32))

        background = folder.background
        if not background.is_file():
            raise DatasetError(f"{background}: background image not found")
        check_same_size(background, (width, height), "the frames'")
        torso_filenames = torso_layers(folder, img_ids, (width, height))

        return DataparserOutputs(
            image_filenames=image_filenames,
            cameras=cameras,
            scene_box=scene_box,
            metadata={
                "audio_features": torch.from_numpy(audio),
                "audio_extractor": extractor,
                "background_filename": background,
                "torso_filenames": torso_filenames,
                "face_rects": torch.from_numpy(rects["face"]),
                "lips_rects": torch.from_numpy(rects["lips"]),
                "eyes_rects": torch.from_numpy(rects["eyes"]),
                "audio_indices": torch.from_numpy(aud_ids),
                "eye_values": torch.from_numpy(eye),
                "img_ids": torch.from_numpy(img_ids),
            },
        )

    def _eye_values(self, folder: PortraitFolder, img_ids: np.ndarray) -> np.ndarray:
        path = folder.au_csv
        if not path.is_file():
            if not self._told_blinks_constant:  # once per parser, not once per split
                self._told_blinks_constant = True
                CONSOLE.print(
                    f"{path} not found: blinks will be a constant (eyes conditioned on 0.5 in every frame)",
                    style="yellow",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
            return np.full(len(img_ids), 0.5, dtype=np.float32)
        eye = eye_openness(read_blink(path), self.config.eye_smoothing)
        if img_ids.max() >= len(eye):
            raise DatasetError(f"{path}: {len(eye)} rows but frame {img_ids.max()} is used")
        return eye[img_ids]

    def _landmark_rects(self, folder: PortraitFolder, img_ids: np.ndarray) -> dict[str, np.ndarray]:
        rects: dict[str, list[np.ndarray]] = {"face": [], "lips": [], "eyes": []}
        for i in img_ids:
            path = folder.landmarks(i)
            if not path.is_file():
                raise DatasetError(f"{path}: landmarks of frame {i} not found")
            for key, rect in landmark_rects(read_landmarks(path)).items():
                rects[key].append(rect)
        return {key: np.stack(value) for key, value in rects.items()}


def check_frame_sizes(image_filenames: list[Path], json_path: Path, json_size: tuple[int, int]) -> None:
    """Every frame image is readable, complete and of the size the json's 2·cx × 2·cy gives.

    The odd image is the one named: the frames that match the json set the size; where none does, the size
    most frames share, and if all frames agree the json is at fault.
    """
    sizes = [read_image_size(path) for path in image_filenames]
    counts = Counter(sizes)
    reference = json_size if json_size in counts else counts.most_common(1)[0][0]
    odd = [(path, size) for path, size in zip(image_filenames, sizes, strict=True) if size != reference]
    if odd:
        path, size = odd[0]
        source = f"2·cx × 2·cy of {json_path.name}" if reference == json_size else "the size most frames have"
        raise DatasetError(
            f"{path}: {_wh(size)} pixels, but the frames are {_wh(reference)} ({source}; "
            f"{len(odd)} of {len(sizes)} frames differ)"
        )
    if reference != json_size:
        raise DatasetError(
            f"{json_path}: cx, cy give {_wh(json_size)} frames (2·cx × 2·cy) but the images in "
            f"{image_filenames[0].parent} are {_wh(reference)}"
        )


def check_same_size(path: Path, size: tuple[int, int], whose: str) -> None:
    """`path` is a readable, complete image of `size` (width, height)."""
    own = read_image_size(path)
    if own != size:
        raise DatasetError(f"{path}: {_wh(own)} pixels, but {whose} size is {_wh(size)}")


def torso_layers(folder: PortraitFolder, img_ids: np.ndarray, size: tuple[int, int]) -> Optional[list[Path]]:
    """The split's torso_imgs/<i>.png, or None where the folder holds none (a head-only dataset).

    A folder that holds some layers must hold them all: dropping every layer for one missing file would
    silently train the torso stage on nothing.
    """
    filenames = [folder.torso(i) for i in img_ids]
    torso_dir = folder.torso_dir
    if not torso_dir.is_dir() or next(torso_dir.glob("*.png"), None) is None:
        return None
    missing = [path for path in filenames if not path.is_file()]
    if missing:
        raise DatasetError(
            f"{missing[0]}: torso layer not found ({len(missing)} of {len(filenames)} missing; "
            f"the others in {torso_dir.name}/ exist)"
        )
    for path in filenames:
        check_same_size(path, size, "the frames'")
    return filenames


def _wh(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


talking_portrait_dataparser = DataParserSpecification(
    config=TalkingPortraitDataParserConfig(),
    description="ER-NeRF / RAD-NeRF talking-portrait folder (transforms_*.json, gt_imgs, aud*.npy, au.csv).",
)
