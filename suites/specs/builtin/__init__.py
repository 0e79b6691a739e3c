"""Built-in suites: one TOML file per synthetic experiment of the article."""

from __future__ import annotations

from pathlib import Path

_DIR = Path(__file__).resolve().parent


def builtin_names() -> list[str]:
    """Names of the built-in suites (file stems), sorted."""
    return sorted(p.stem for p in _DIR.glob("*.toml"))


def builtin_path(name: str) -> Path:
    """Path of the built-in suite ``name``; ``FileNotFoundError`` if there is none."""
    p = _DIR / f"{name}.toml"
    if not p.is_file():
        raise FileNotFoundError(f"no built-in suite {name!r}; built-in suites: {', '.join(builtin_names())}")
    return p
