"""Sesame CSM-1B inference engine (torch only)."""

from .config import SAMPLE_RATE
from .generator import GenerationRequest, Generator, Segment
from .loading import load_generator
from .resolve import ModelFiles, ModelFilesError, resolve_model

__all__ = ["SAMPLE_RATE", "GenerationRequest", "Generator", "ModelFiles", "ModelFilesError", "Segment",
           "load_generator", "resolve_model"]
