"""The helpers of the PyTorch course: each function here was first built in a lesson.

Modules: `config` (mode, paths, seeds, device), `data` (datasets and their checks), `models`,
`train` (the training loop, metrics, checkpoints), `plots`, `optim` (optimisers from scratch),
`widgets` (the interactive explorers), `pretrained` (ResNet-18 weights), `explain` (saliency,
Grad-CAM), `ddp` (the torchrun script), `exercises` (the exercises' checks) and `prefetch`.
"""

__version__ = "0.1.0"
