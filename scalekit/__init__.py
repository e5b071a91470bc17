"""scalekit: scale convolutional networks (EfficientNet's compound scaling) and count the cost.

Importing scalekit does not import torch; only building or timing a model does.

    from scalekit import load_spec, scale, count, build_model, measure_latency

    b3 = scale(load_spec("efficientnet_b0"), preset="b3")   # a new, frozen Spec
    count(b3).params                                         # exact, without torch
    model = build_model(b3)                                  # torch.nn.Module, ready to train
    tv = build_model(b3, layout="torchvision")               # torchvision's names: loads its file
"""

__version__ = "0.1.0"

# after __version__: submodules (cli.py) import it from here
from .api import build_model, count, load_spec, load_weights, measure_latency, scale  # noqa: E402
from .counting import Counts  # noqa: E402
from .errors import ScalekitError, ScalingError, SpecError  # noqa: E402
from .spec import Spec  # noqa: E402

__all__ = ["Counts", "ScalekitError", "ScalingError", "Spec", "SpecError", "__version__",
           "build_model", "count", "load_spec", "load_weights", "measure_latency", "scale"]
