"""Scores a camsweep result document against a lab manifest.

A field counts as correct when it equals the manifest. Fields the manifest marks as not
observable without a login must be null (or equal): a scan may say "unknown", never guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FIELDS = ("vendor", "model", "firmware", "is_camera", "face_capable")


def _norm(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


@dataclass
class Score:
    devices: int = 0
    found: int = 0
    identified: int = 0  # every observable field right, nothing wrongly guessed
    wrong: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"{self.found}/{self.devices} found, {self.identified}/{self.devices} fully identified"


def score(manifest: dict[str, Any], result: dict[str, Any], *, check_mac: bool = True) -> Score:
    by_ip = {d["ip"]: d for d in result["devices"]}
    s = Score(devices=len(manifest["devices"]))
    for truth in manifest["devices"]:
        got = by_ip.get(truth["ip"])
        observable = truth["observable_without_login"]
        if got is None and not observable.get("found", True):
            s.devices -= 1  # e.g. a device with no open port, in a lab without layer 2
            continue
        if got is None:
            s.wrong.append(f"{truth['name']}: not found")
            continue
        s.found += 1
        problems = []
        if check_mac and got.get("mac") != truth["mac"]:
            problems.append(f"mac {got.get('mac')!r} != {truth['mac']!r}")
        for name in FIELDS:
            want, have = truth[name], got.get(name)
            if observable.get(name, True):
                if _norm(have) != _norm(want):
                    problems.append(f"{name} {have!r} != {want!r}")
            elif have is not None and _norm(have) != _norm(want) and not (name == "is_camera" and have is False):
                # is_camera False means "not shown to be a camera"; any other field must stay null
                problems.append(f"{name} guessed {have!r} (truth {want!r}, not observable)")
        if problems:
            s.wrong.append(f"{truth['name']}: " + "; ".join(problems))
        else:
            s.identified += 1
    return s
