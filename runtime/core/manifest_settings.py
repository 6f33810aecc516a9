"""The methods every settings dataclass stored in a bundle manifest shares (SearchConfig,
RefineConfig): to and from the manifest's JSON dict, and replace-unless-None for overrides."""
from __future__ import annotations

import dataclasses
from typing import Any


class ManifestSettings:
    """Mix into a frozen dataclass. from_dict ignores keys the class does not know (a newer
    manifest) and takes None as {} (an older manifest without the entry); `_coerce(name, value)`
    converts a JSON value to the field's type (identity here)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def _coerce(cls, name: str, value: Any) -> Any:
        return value

    @classmethod
    def from_dict(cls, data: dict | None):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: cls._coerce(k, v) for k, v in (data or {}).items() if k in known})

    def replace(self, **changes):
        """A copy with the given fields changed; None values leave a field as it is."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
