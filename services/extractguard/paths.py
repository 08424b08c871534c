"""Where ExtractGuard keeps its local state: the repository checkout and the data directory.

The data directory (`.extractguard/` in the checkout unless EXTRACTGUARD_HOME says otherwise)
holds the local Kafka broker, the embedded ClickHouse database and service run files.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def schemas_dir() -> Path:
    """The folder of topic declarations and JSON Schemas.

    A wheel carries them inside the package (`_schemas`); a checkout has them at the top level.
    """
    packaged = _PACKAGE_DIR / "_schemas"
    if packaged.is_dir():
        return packaged
    return _PACKAGE_DIR.parent.parent / "schemas"


def project_root() -> Path:
    return _PACKAGE_DIR.parent.parent


def data_home() -> Path:
    home = os.environ.get("EXTRACTGUARD_HOME")
    return Path(home) if home else project_root() / ".extractguard"
