"""Where the tests find the official ManagerBench data: $MANAGERBENCH_DATA, else ../shared/data/managerbench
beside the repository. Outside CI a missing copy skips those tests; in CI it fails them, so a missing data
set can never pass as green."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OFFICIAL_DATA = Path(os.environ.get("MANAGERBENCH_DATA") or REPO.parent / "shared" / "data" / "managerbench")

if not OFFICIAL_DATA.is_dir() and os.environ.get("CI"):
    raise RuntimeError(f"the official ManagerBench data is not at {OFFICIAL_DATA}; set MANAGERBENCH_DATA")

needs_official = pytest.mark.skipif(not OFFICIAL_DATA.is_dir(),
                                    reason=f"official ManagerBench data not at {OFFICIAL_DATA}")
