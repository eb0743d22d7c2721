"""The networks, one module per architecture; each ``ModelSpec`` names its builder here by string, so
describing the models (``upscale models``) does not import torch."""
