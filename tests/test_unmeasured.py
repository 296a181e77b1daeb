"""Outgoing weights the output fit never saw, measured just past the neuron's plane."""

from __future__ import annotations

import numpy as np

from glassbox.extract import ExtractConfig, extract
from glassbox.mlp import ReLUNet
from glassbox.oracle.core import net_oracle

W1 = np.array(
    [
        [1.0, 0.1, 0.2, 0.0, 0.3],
        [-1.0, 0.2, -0.1, 0.4, 0.0],
        [0.3, 1.0, 1.0, 0.2, -0.5],
        [0.2, 1.0, -1.0, 0.6, 0.1],
    ]
)
B1 = np.array([0.1, -0.2, 0.3, 0.05])


def test_a_weight_seen_only_past_its_plane_is_measured_there() -> None:
    # Output 1 = ReLU(h_1 + 0.01 h_0 - 1.5) is on only where neuron 0 is off in any sample
    # (it needs x_0 > 150 on neuron 0's side), but on neuron 0's plane it is on where h_1 > 1.5:
    # a step past the plane there measures the 0.01. Before, this run failed ("never measured").
    W2 = np.array([[1.0, 0.7, -0.5, 0.8], [0.01, 1.0, 0.0, 0.0]])
    truth = ReLUNet([W1, W2], [B1, np.array([0.2, -1.5])], output_relu=True)
    result = extract(net_oracle(truth), ExtractConfig(seed=1))
    assert result.success, result.message
    assert result.net is not None and result.check["unmeasured_weights"] == 0
    R, Wo = np.asarray(result.net.weights[0]), np.asarray(result.net.weights[1])
    j = int(np.argmax(np.abs(R @ W1[0]) / np.linalg.norm(R, axis=1)))
    scale = R[j, 0] / W1[0, 0]  # the recovered neuron is the true one times a positive scale
    assert np.allclose(R[j], scale * W1[0], rtol=1e-12, atol=1e-12)
    assert abs(Wo[1, j] * scale - 0.01) <= 1e-9
    far = np.array([[300.0, 0, 0, 0, 0]])  # where the weight matters: output 1 = 1.501
    assert abs(result.net.forward(far)[0, 1] - truth.forward(far)[0, 1]) <= 1e-9
