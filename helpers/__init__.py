"""The helpers of the PyTorch course: each function here was first built in a lesson.

Modules: `config` (mode, paths, seeds, device) and `data` (datasets and their checks).
"""

__version__ = "0.1.0"
