"""Frozen generators seen through one protocol.

``load_generator(path)`` reads StyleGAN2-ADA / StyleGAN3 / StyleGAN-XL network pickles (as data, no code runs)
and our converted safetensors format; ``convert_generator(in_pkl, out)`` writes the latter.
"""

from lsi.generator.convert import convert_generator
from lsi.generator.embedded import EmbeddedGenerator, EmbeddedGeneratorConfig
from lsi.generator.errors import GeneratorFileError, UnsafePickleError
from lsi.generator.load import load_generator
from lsi.generator.loaded import StyleGANGenerator
from lsi.generator.protocol import Generator, parse_feature_name

__all__ = ["EmbeddedGenerator", "EmbeddedGeneratorConfig", "Generator", "GeneratorFileError", "StyleGANGenerator",
           "UnsafePickleError", "convert_generator", "load_generator", "parse_feature_name"]
