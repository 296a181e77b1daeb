"""Model reconstruction: recover a ReLU network's weights from queries alone."""
