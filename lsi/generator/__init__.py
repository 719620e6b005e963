"""Frozen generators seen through one protocol."""

from lsi.generator.embedded import EmbeddedGenerator, EmbeddedGeneratorConfig
from lsi.generator.protocol import Generator, parse_feature_name

__all__ = ["EmbeddedGenerator", "EmbeddedGeneratorConfig", "Generator", "parse_feature_name"]
