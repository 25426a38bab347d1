"""Where brogue keeps what it computes once per machine: imported weights and converted models.

`$BROGUE_CACHE`, else `~/.cache/brogue`; each encoder has a folder of its own in it.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("BROGUE_CACHE", Path.home() / ".cache" / "brogue"))
