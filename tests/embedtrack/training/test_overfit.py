"""A tiny network must overfit one synthetic crop pair: the losses, the network and the clustering agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctc.synth import generate_sequence
from embedtrack.inference.cluster import cluster
from embedtrack.training.data import links_for
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.models.predictions import Predictions
from embedtrack.inference.preprocess import normalise
from embedtrack.training.losses import embedtrack_loss
from embedtrack.training.metrics import matched_iou
from embedtrack.models.architecture import ArchConfig, EmbedTrackNet

SCALE = 64.0


@pytest.mark.slow
def test_tiny_model_overfits_one_crop_pair() -> None:
    torch.manual_seed(0)
    seq = generate_sequence("fluo", frames=3, size=(64, 64), seed=5)
    img = [torch.from_numpy(normalise(f))[None, None] for f in seq.images[1:3]]
    lab = [torch.from_numpy(m.astype(np.int64))[None] for m in seq.masks[1:3]]
    parents = {t.label: t.parent for t in seq.tracks}
    links = [torch.from_numpy(links_for(seq.masks[2], seq.masks[1], parents))]
    assert lab[1].max() > 0
    net = EmbedTrackNet(ArchConfig(widths=(8, 16, 32), encoder_blocks=1, dilation_rounds=1,
                                   dropout_low=0.0, dropout_high=0.0))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(150):
        seg_t, seg_p, track = net(img[1], img[0])
        loss, _ = embedtrack_loss(seg_t, seg_p, track, lab[1], lab[0], links, SCALE)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        seg = net.decode_seg(net.encode(img[1]))[0].numpy()
    pred = cluster(Predictions.from_maps(seg), InferenceConfig(coord_scale=SCALE, min_size=5))
    iou_sum, n = matched_iou(pred, lab[1][0].numpy())
    assert n > 0
    assert iou_sum / n > 0.9
