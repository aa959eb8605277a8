"""The journal: a static site generated from the experiments branch (``labbook site``)."""

from .build import BuildResult, build, default_output

__all__ = ["BuildResult", "build", "default_output"]
