"""BiSeNet face parsing from a user's checkpoint (the model ER-NeRF's preprocessing runs).

The module names match the widely shared CelebAMask-HQ BiSeNet checkpoints (ResNet-18 context path,
19 classes, e.g. `79999_iter.pth`): keys such as `cp.resnet.conv1.weight`, `cp.arm16.conv_atten.weight`,
`ffm.convblk.conv.weight`, `conv_out.conv_out.weight`. Such a file loads as it is; the widths are read
from the checkpoint, so smaller variants (as the tests save) load too. A checkpoint may be a bare
state dict or one under 'state_dict' / 'model', with or without DataParallel's 'module.' prefix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from ernerf_ns.layout.parsing import BACKGROUND, HEAD, NECK, TORSO
from ernerf_ns.process.errors import ProcessError

CELEBAMASK_TO_LABEL = np.array(
    # 0 background, 1 skin, 2-3 brows, 4-5 eyes, 6 glasses, 7-8 ears, 9 ear ring, 10 nose, 11 mouth,
    # 12-13 lips → head; 14 neck, 15 necklace → neck; 16 cloth → torso; 17 hair, 18 hat → head.
    [BACKGROUND] + [HEAD] * 13 + [NECK, NECK, TORSO, HEAD, HEAD],
    dtype=np.uint8,
)
"""CelebAMask-HQ class → our label, grouped as ER-NeRF's parsing colours group them."""
INPUT_SIZE = 512
"""BiSeNet face-parsing models are trained on 512² crops."""
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class ConvBNReLU(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNet18(nn.Module):
    """The context path's backbone; returns the 1/8, 1/16 and 1/32 feature maps."""

    def __init__(self, base: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        widths = [base, base, 2 * base, 4 * base, 8 * base]
        for i in range(4):
            stride = 1 if i == 0 else 2
            layer = nn.Sequential(
                BasicBlock(widths[i], widths[i + 1], stride), BasicBlock(widths[i + 1], widths[i + 1])
            )
            setattr(self, f"layer{i + 1}", layer)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


class AttentionRefinement(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(feat.mean((2, 3), keepdim=True))))


class ContextPath(nn.Module):
    def __init__(self, base: int = 64):
        super().__init__()
        mid = 2 * base
        self.resnet = ResNet18(base)
        self.arm16 = AttentionRefinement(4 * base, mid)
        self.arm32 = AttentionRefinement(8 * base, mid)
        self.conv_head32 = ConvBNReLU(mid, mid)
        self.conv_head16 = ConvBNReLU(mid, mid)
        self.conv_avg = ConvBNReLU(8 * base, mid, 1, 1, 0)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        context = self.conv_avg(feat32.mean((2, 3), keepdim=True))
        up32 = F.interpolate(self.arm32(feat32) + context, size=feat16.shape[2:], mode="nearest")
        up32 = self.conv_head32(up32)
        up16 = F.interpolate(self.arm16(feat16) + up32, size=feat8.shape[2:], mode="nearest")
        return feat8, self.conv_head16(up16), up32


class FeatureFusion(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, 1, 1, 0)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, spatial: Tensor, context: Tensor) -> Tensor:
        feat = self.convblk(torch.cat([spatial, context], 1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(feat.mean((2, 3), keepdim=True)))))
        return feat + feat * atten


class OutputHead(nn.Module):
    def __init__(self, cin: int, mid: int, classes: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, mid)
        self.conv_out = nn.Conv2d(mid, classes, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """BiSeNet with a ResNet-18 context path; the 1/8 ResNet features serve as the spatial path."""

    def __init__(self, classes: int = 19, base: int = 64):
        super().__init__()
        self.cp = ContextPath(base)
        self.ffm = FeatureFusion(4 * base, 4 * base)
        self.conv_out = OutputHead(4 * base, 4 * base, classes)
        # Auxiliary heads of training; kept so checkpoints load strictly.
        self.conv_out16 = OutputHead(2 * base, base, classes)
        self.conv_out32 = OutputHead(2 * base, base, classes)

    def forward(self, x: Float[Tensor, "batch 3 H W"]) -> Float[Tensor, "batch classes H W"]:
        feat8, context8, _ = self.cp(x)
        logits = self.conv_out(self.ffm(feat8, context8))
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=True)


def load_bisenet(path: Path) -> BiSeNet:
    """Build a BiSeNet of the checkpoint's widths and load its weights (strictly), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise ProcessError(f"{path}: parsing checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ProcessError(f"{path}: not a readable PyTorch checkpoint ({err})") from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ProcessError(f"{path}: expected a state dict, found {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        base = int(state["cp.resnet.conv1.weight"].shape[0])
        classes = int(state["conv_out.conv_out.weight"].shape[0])
    except KeyError as err:
        raise ProcessError(f"{path}: not a BiSeNet face-parsing checkpoint (no {err.args[0]})") from err
    if classes != len(CELEBAMASK_TO_LABEL):
        raise ProcessError(f"{path}: BiSeNet has {classes} classes; CelebAMask-HQ's 19 are expected")
    model = BiSeNet(classes, base)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ProcessError(f"{path}: weights do not fit BiSeNet ({str(err).splitlines()[0]})") from err
    return model.eval()


@torch.no_grad()
def bisenet_labels(model: BiSeNet, rgb: np.ndarray) -> np.ndarray:
    """Label map (BACKGROUND/HEAD/NECK/TORSO) of one RGB frame, at the frame's resolution."""
    height, width = rgb.shape[:2]
    x = torch.from_numpy(rgb).float().permute(2, 0, 1)[None] / 255.0
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    x = (x - torch.tensor(_MEAN).view(1, 3, 1, 1)) / torch.tensor(_STD).view(1, 3, 1, 1)
    classes = model(x).argmax(1, keepdim=True).float()
    classes = F.interpolate(classes, size=(height, width), mode="nearest")[0, 0].long().numpy()
    return CELEBAMASK_TO_LABEL[classes]
