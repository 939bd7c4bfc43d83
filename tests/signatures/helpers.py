"""Helpers for signature tests: build signatures from inline YAML, and scratch signature roots."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import yaml

from scanner.observations import Observation
from scanner.signatures import Match, Signature, default_root
from scanner.signatures.loader import _Where, parse_signature, read_identifiers
from scanner.signatures.matcher import match_one

IDENTIFIERS = read_identifiers(default_root(), [])


def sig(text: str) -> Signature:
    """A Signature from inline YAML (``examples`` may be left out); fails the test on any problem."""
    data: Any = yaml.safe_load(textwrap.dedent(text))
    data.setdefault("id", "inline-test")
    data.setdefault("info", {"name": "test", "author": "test"})
    data.setdefault("certainty", 0.5)
    if "examples" not in data:
        data["examples"] = [{"observation": {"source": data["source"][0], "fields": {"unused": "x"}}, "expect": {}}]
    problems: list[str] = []
    parsed = parse_signature(data, IDENTIFIERS, _Where(problems, "inline"))
    assert parsed is not None and not problems, problems
    return parsed


def problems_of(text: str) -> list[str]:
    """What parse_signature says about inline YAML (schema-level problems only)."""
    problems: list[str] = []
    parse_signature(yaml.safe_load(textwrap.dedent(text)), IDENTIFIERS, _Where(problems, "inline"))
    return problems


def obs(source: str = "http", raw: str = "", port: int | None = None, status: str = "success",
        **fields: str) -> Observation:
    return Observation(ip="192.0.2.1", source=source, port=port, status=status, fields=dict(fields), raw=raw)


def run(signature: Signature, observation: Observation) -> Match | None:
    return match_one(signature, observation)


def scratch_root(tmp_path: Path) -> Path:
    """An empty signature root with the real identifiers."""
    root = tmp_path / "sigs"
    shutil.copytree(default_root() / "identifiers", root / "identifiers")
    return root


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path
