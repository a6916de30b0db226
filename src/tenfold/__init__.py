"""tenfold: ten research systems in ML serving, video analytics, networking and AI safety.

Layers: :mod:`tenfold.core` (domain-free foundation), :mod:`tenfold.llm`,
:mod:`tenfold.vision`, :mod:`tenfold.net`; systems live under :mod:`tenfold.systems`.
"""

from importlib import metadata

try:
    __version__ = metadata.version("tenfold")
except metadata.PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
