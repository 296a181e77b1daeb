import numpy as np

from glassbox.mlp import ReLUNet


def test_random_follows_the_documented_distribution():
    net = ReLUNet.random("400-300-2000", seed=0)
    for w in net.weights:
        fan_in = w.shape[1]
        assert abs(w.std() / np.sqrt(2.0 / fan_in) - 1) < 0.02 and abs(w.mean()) < 0.005
    bias = np.concatenate(net.biases)  # N(0, 1)
    assert abs(bias.std() - 1) < 0.05 and abs(bias.mean()) < 0.06


def test_random_options():
    assert [b is None for b in ReLUNet.random("3-4-5-2:nohiddenbias").biases] == [True, True, False]
    assert all(b is None for b in ReLUNet.random("3-4-2:nobias").biases)
    assert ReLUNet.random("3-4-2:relu").output_relu
    assert not ReLUNet.random("3-4-2").output_relu
