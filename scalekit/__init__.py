"""scalekit: scale convolutional networks (EfficientNet's compound scaling) and count the cost.

Importing scalekit does not import torch; only building or timing a model does.
"""

__version__ = "0.1.0"
