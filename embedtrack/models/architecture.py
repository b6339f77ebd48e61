"""The EmbedTrack network (paper §3.1): a branched ERFNet with one shared encoder and three decoders.

* ``encode(frame)`` runs the shared encoder on one frame (each frame of a pair on its own).
* ``decode_seg(features)`` runs both segmentation decoders on one frame's features and returns
  5 channels: segmentation offsets (2, tanh), clustering bandwidths (2, sigmoid), seediness (1, sigmoid).
* ``decode_track(features_t, features_prev)`` runs the tracking decoder on the two frames' features
  concatenated and returns the tracking offsets (2, tanh) from pixels at t to their cell centre at t-1.

Channel order of every offset/bandwidth pair is (y, x), i.e. (row, column). Input height and width must be
divisible by 8 (three stride-2 stages); :mod:`embedtrack.inference.predict` pads frames accordingly.

For inference, :func:`fold_batch_norm` returns a copy in which every batch norm is folded into the convolution
before it (the same function up to float rounding, without the normalisation passes over the activations).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from embedtrack.errors import ConfigError
from embedtrack.models.inference_config import check_fields
from embedtrack.models.predictions import SEG_CHANNELS, TRACK_CHANNELS


#: Upper bounds of the architecture numbers a model's ``config.json`` may hold (the paper's network has input
#: channels 1, widths 16/64/128, 5 blocks, 2 dilation rounds): far above any useful network, far below one that
#: would allocate gigabytes before the weights are even read.
MAX_IN_CHANNELS = 16
MAX_WIDTH = 4096
MAX_BLOCKS = 64
MAX_DILATION_ROUNDS = 16


@dataclass(frozen=True)
class ArchConfig:
    """Architecture hyper-parameters. Defaults are the ERFNet of the paper."""

    in_channels: int = field(default=1, metadata={"lo": 1, "hi": MAX_IN_CHANNELS})
    widths: tuple[int, int, int] = (16, 64, 128)  # each 1..MAX_WIDTH
    # non-bottleneck blocks after the second downsampler
    encoder_blocks: int = field(default=5, metadata={"lo": 1, "hi": MAX_BLOCKS})
    # repetitions of the dilation pattern (2, 4, 8, 16) at the lowest resolution
    dilation_rounds: int = field(default=2, metadata={"lo": 1, "hi": MAX_DILATION_ROUNDS})
    dropout_low: float = field(default=0.03, metadata={"lo": 0, "hi": 1, "hi_open": True})
    dropout_high: float = field(default=0.3, metadata={"lo": 0, "hi": 1, "hi_open": True})

    def __post_init__(self) -> None:
        check_architecture(self.to_dict(), "architecture")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["widths"] = list(self.widths)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "architecture") -> ArchConfig:
        """Build from a JSON object; unknown keys, wrong types and out-of-range numbers raise one ConfigError."""
        check_architecture(data, source)
        values = dict(data)
        if "widths" in values:
            values["widths"] = tuple(values["widths"])
        return cls(**values)


def check_architecture(arch: dict[str, Any], source: str) -> None:
    """Types and ranges of an ``architecture`` object (unknown keys are rejected too); ``source`` names the file
    in the one :class:`ConfigError`."""
    check_fields(ArchConfig, arch, source)  # types, and the ranges of the scalar numbers
    if any(not 1 <= w <= MAX_WIDTH for w in arch.get("widths", [1])):
        raise ConfigError(f"{source}: widths must be whole numbers from 1 to {MAX_WIDTH}, got {arch['widths']!r}")


class ChannelAffine(nn.Module):
    """``x * scale + shift`` per channel: a batch norm in eval mode, frozen (used where it cannot be folded)."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.detach().reshape(1, -1, 1, 1).clone())
        self.register_buffer("shift", shift.detach().reshape(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, x, self.scale)


class Downsampler(nn.Module):
    """Strided 3×3 convolution concatenated with max pooling (ERFNet downsampler block)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out - c_in, 3, stride=2, padding=1, bias=True)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3)
        self.pool_affine: nn.Module = nn.Identity()  # the pooled channels' share of bn, once folded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(torch.cat([self.conv(x), self.pool_affine(self.pool(x))], 1)), inplace=True)


class NonBottleneck1d(nn.Module):
    """Residual block with factorised 3×1 / 1×3 convolutions, the second pair dilated."""

    def __init__(self, channels: int, dropout: float, dilation: int) -> None:
        super().__init__()
        c, d = channels, dilation
        self.conv3x1_1 = nn.Conv2d(c, c, (3, 1), padding=(1, 0))
        self.conv1x3_1 = nn.Conv2d(c, c, (1, 3), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(c, eps=1e-3)
        self.conv3x1_2 = nn.Conv2d(c, c, (3, 1), padding=(d, 0), dilation=(d, 1))
        self.conv1x3_2 = nn.Conv2d(c, c, (1, 3), padding=(0, d), dilation=(1, d))
        self.bn2 = nn.BatchNorm2d(c, eps=1e-3)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv3x1_1(x), inplace=True)
        out = F.relu(self.bn1(self.conv1x3_1(out)), inplace=True)
        out = F.relu(self.conv3x1_2(out), inplace=True)
        out = self.dropout(self.bn2(self.conv1x3_2(out)))
        return F.relu(out + x, inplace=True)


class Upsampler(nn.Module):
    """Transposed 3×3 convolution with stride 2, batch norm, ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Encoder(nn.Module):
    def __init__(self, arch: ArchConfig) -> None:
        super().__init__()
        w1, w2, w3 = arch.widths
        layers: list[nn.Module] = [Downsampler(arch.in_channels, w1), Downsampler(w1, w2)]
        layers += [NonBottleneck1d(w2, arch.dropout_low, 1) for _ in range(arch.encoder_blocks)]
        layers.append(Downsampler(w2, w3))
        for _ in range(arch.dilation_rounds):
            layers += [NonBottleneck1d(w3, arch.dropout_high, d) for d in (2, 4, 8, 16)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Decoder(nn.Module):
    def __init__(self, c_in: int, arch: ArchConfig, c_out: int) -> None:
        super().__init__()
        w1, w2, _ = arch.widths
        self.layers = nn.Sequential(
            Upsampler(c_in, w2),
            NonBottleneck1d(w2, 0.0, 1),
            NonBottleneck1d(w2, 0.0, 1),
            Upsampler(w2, w1),
            NonBottleneck1d(w1, 0.0, 1),
            NonBottleneck1d(w1, 0.0, 1),
            nn.ConvTranspose2d(w1, c_out, 2, stride=2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class EmbedTrackNet(nn.Module):
    """Branched ERFNet: shared encoder, two segmentation decoders and one tracking decoder."""

    def __init__(self, arch: ArchConfig | None = None) -> None:
        super().__init__()
        self.arch = arch or ArchConfig()
        feat = self.arch.widths[2]
        self.encoder = Encoder(self.arch)
        self.seg_decoder = Decoder(feat, self.arch, 4)  # offsets (2) + bandwidths (2)
        self.seed_decoder = Decoder(feat, self.arch, 1)  # seediness
        self.track_decoder = Decoder(2 * feat, self.arch, TRACK_CHANNELS)
        self._init_output_biases()

    def _init_output_biases(self) -> None:
        # Start with small offsets, a mid-range bandwidth and low seediness, a stable starting point.
        with torch.no_grad():
            for dec in (self.seg_decoder, self.seed_decoder, self.track_decoder):
                head = dec.layers[-1]
                assert isinstance(head, nn.ConvTranspose2d)
                head.weight.mul_(0.1)
                head.bias.zero_()
            seed_head = self.seed_decoder.layers[-1]
            assert isinstance(seed_head, nn.ConvTranspose2d)
            seed_head.bias.fill_(-2.0)
            seg_head = self.seg_decoder.layers[-1]
            assert isinstance(seg_head, nn.ConvTranspose2d)
            seg_head.bias[2:4].fill_(0.5)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Encoder features of a batch of frames [B, C, H, W] -> [B, widths[2], H/8, W/8]."""
        return self.encoder(frames)

    def decode_seg(self, features: torch.Tensor) -> torch.Tensor:
        """Segmentation maps [B, 5, H, W]: offsets (tanh), bandwidths (sigmoid), seediness (sigmoid)."""
        emb = self.seg_decoder(features).contiguous()  # channel slices of channels-last maps: slow elementwise ops
        seed = self.seed_decoder(features)
        return torch.cat([torch.tanh(emb[:, :2]), torch.sigmoid(emb[:, 2:4]), torch.sigmoid(seed)], 1)

    def decode_track(self, features_t: torch.Tensor, features_prev: torch.Tensor) -> torch.Tensor:
        """Tracking offsets [B, 2, H, W] (tanh) from pixels at t to their cell centre at t-1."""
        return torch.tanh(self.track_decoder(torch.cat([features_t, features_prev], 1)))

    def forward(self, frame_t: torch.Tensor, frame_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Full pair pass: (segmentation at t, segmentation at t-1, tracking offsets t -> t-1)."""
        n = frame_t.shape[0]
        feats = self.encode(torch.cat([frame_t, frame_prev], 0))  # same weights, frames encoded independently
        f_t, f_prev = feats[:n], feats[n:]
        seg = self.decode_seg(feats)
        return seg[:n], seg[n:], self.decode_track(f_t, f_prev)


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of a batch norm in eval mode: ``bn(x) = x * scale + shift`` per channel."""
    assert bn.running_var is not None and bn.running_mean is not None
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def _fold_into(conv: nn.Conv2d | nn.ConvTranspose2d, scale: torch.Tensor, shift: torch.Tensor) -> None:
    """Scale the output channels of ``conv`` (dim 0 of a convolution's weight, dim 1 of a transposed one's)
    and shift its bias, so that ``conv'(x) = conv(x) * scale + shift``."""
    out_dim = 1 if isinstance(conv, nn.ConvTranspose2d) else 0
    shape = [1] * conv.weight.dim()
    shape[out_dim] = -1
    conv.weight.mul_(scale.reshape(shape))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(shift)
    conv.bias = nn.Parameter(bias * scale + shift)


@torch.no_grad()
def fold_batch_norm(net: EmbedTrackNet) -> EmbedTrackNet:
    """An eval-mode copy of ``net`` with every batch norm folded into the convolution before it (the
    downsamplers' pooled channels keep a per-channel affine); ``net`` itself is left as it is."""
    folded = copy.deepcopy(net).eval()
    for module in folded.modules():
        if isinstance(module, NonBottleneck1d):
            for conv, name in ((module.conv1x3_1, "bn1"), (module.conv1x3_2, "bn2")):
                _fold_into(conv, *_bn_affine(getattr(module, name)))
                setattr(module, name, nn.Identity())
        elif isinstance(module, Upsampler):
            _fold_into(module.conv, *_bn_affine(module.bn))
            module.bn = nn.Identity()
        elif isinstance(module, Downsampler):
            scale, shift = _bn_affine(module.bn)
            n_conv = module.conv.out_channels
            _fold_into(module.conv, scale[:n_conv], shift[:n_conv])
            module.pool_affine = ChannelAffine(scale[n_conv:], shift[n_conv:])
            module.bn = nn.Identity()
    return folded
