"""Where the data shipped inside the package lives, found from any working directory and after
a (non-editable) wheel install. ``profiles`` and ``mappings`` are symbolic links to the
repository's top-level folders; the wheel holds copies (``pyproject.toml``: package-data)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
PROFILES_DIR = HERE / "profiles"
"""The reko FHIR package (``profiles/``)."""
MAPPINGS_DIR = HERE / "mappings"
"""The journal-system mappings (``mappings/``)."""
RIVTA_XSD_DIR = HERE / "delivery" / "rivta" / "xsd"
"""The vendored RIVTA service-contract schemas."""
