"""Optional learned audio features (HuBERT, wav2vec2) through transformers, from weights on disk.

ER-NeRF's `aud_hu.npy` holds HuBERT's last hidden states and `aud_eo.npy` the CTC logits of a
wav2vec2 model (the Esperanto one, 44 symbols); both run at 50 Hz on 16 kHz audio. Nothing is
downloaded: the user points `--audio-model-path` at a folder saved with `save_pretrained`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ernerf_ns.audio.logmel import SAMPLE_RATE
from ernerf_ns.audio.windows import window_features
from ernerf_ns.errors import UserError
from ernerf_ns.layout.audio_features import FEATURE_FILES

EXTRACTOR = {"hubert": "hubert", "wav2vec2": "esperanto"}
"""ER-NeRF's name for the features each model kind computes (the Esperanto wav2vec2 is its `esperanto`)."""
FEATURE_FILE = {kind: FEATURE_FILES[name] for kind, name in EXTRACTOR.items()}
"""Which ER-NeRF file each model kind writes."""
CHUNK_SECONDS = 20
"""Audio is run in chunks this long so memory stays flat on long videos."""
STRIDE = 320
"""Samples per output frame of the wav2vec2/HuBERT convolutional front end (16 kHz / 50 Hz)."""
RECEPTIVE = 400
"""Samples the front end needs for its first output frame."""


class SpeechModelError(UserError):
    """A HuBERT / wav2vec2 model folder cannot be used; the message names it and says why."""


def load_speech_model(kind: str, path: Path) -> torch.nn.Module:
    """Load a HuBERT (hidden states) or wav2vec2 CTC (logits) model from a local folder, in eval mode."""
    path = Path(path)
    if kind not in FEATURE_FILE:
        raise SpeechModelError(f"unknown audio model '{kind}'; choose one of {sorted(FEATURE_FILE)}")
    if not (path / "config.json").is_file():
        raise SpeechModelError(
            f"{path}: not a transformers model folder (config.json missing); save one with save_pretrained"
        )
    try:
        import transformers
    except ImportError as err:
        raise SpeechModelError("--audio-model needs transformers: pip install transformers") from err
    try:
        if kind == "hubert":
            model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True)
        else:
            model = transformers.AutoModelForCTC.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise SpeechModelError(f"{path}: cannot load a {kind} model ({str(err).splitlines()[0]})") from err
    return model.eval()


def _normalise(wav: np.ndarray) -> np.ndarray:
    # What Wav2Vec2FeatureExtractor(do_normalize=True) does, so a model folder without a
    # preprocessor_config.json still gets the input it was trained on.
    return (wav - wav.mean()) / np.sqrt(wav.var() + 1e-7)


@torch.no_grad()
def speech_model_frames(model: torch.nn.Module, kind: str, wav: np.ndarray) -> np.ndarray:
    """Per-50-Hz-frame features [num_audio_frames, C] of 16 kHz mono audio."""
    chunk = CHUNK_SECONDS * SAMPLE_RATE
    wav = np.pad(wav.astype(np.float32), (0, max(0, RECEPTIVE - len(wav))))
    device = next(model.parameters()).device
    outputs = []
    for start in range(0, len(wav), chunk):
        # Each chunk overhangs by the front end's extra context so chunks join without a lost frame.
        piece = wav[start : start + chunk + RECEPTIVE - STRIDE]
        if len(piece) < RECEPTIVE:
            break
        values = torch.from_numpy(_normalise(piece))[None].to(device)
        out = model(values)
        feats = out.last_hidden_state if kind == "hubert" else out.logits
        outputs.append(feats[0].float().cpu().numpy())
    return np.concatenate(outputs, axis=0)


def speech_model_features(kind: str, path: Path, wav: np.ndarray, num_video_frames: int) -> np.ndarray:
    """ER-NeRF-shaped [T, 16, C] features from a local HuBERT / wav2vec2 model."""
    model = load_speech_model(kind, path)
    return window_features(speech_model_frames(model, kind, wav), num_video_frames)
