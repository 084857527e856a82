"""The YAML loader every manifest, topology and flow file is read with: libyaml's when PyYAML has it.

PyYAML's pure-Python ``SafeLoader`` spends most of the time of loading a repository's policies
scanning characters; ``CSafeLoader`` does the scanning and parsing in libyaml (C) and builds the
same Python objects with the same ``SafeConstructor``, so what a document means does not change.
PyYAML's wheels bundle libyaml (``yaml.__with_libyaml__``); a build without it falls back to the
pure-Python loader. libyaml also refuses nesting deeper than 1000 levels with an ordinary
``YAMLError`` ("exceeded maximum nesting depth") instead of recursing.
"""

from __future__ import annotations

import yaml

SafeLoader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = (
    yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader)

__all__ = ["SafeLoader"]
