"""Where things are on disk, relative to the repository checkout."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MODELS_DIR = REPO_ROOT / "models"
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
