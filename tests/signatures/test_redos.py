"""No shipped signature takes long on hostile text (catastrophic regex backtracking).

Every part a signature reads is filled with adversarial strings as long as the matcher ever looks
at (MAX_PART_CHARS): long runs of spaces between words, of one letter, of digits and dots, of
markup. A pattern like ``\\S.*?\\s*$`` is quadratic on "a<16k spaces>b"; this test catches it.
"""

from __future__ import annotations

import time

import pytest

from scanner.observations import Observation
from scanner.signatures import load_signatures
from scanner.signatures.matcher import MAX_PART_CHARS, match_one
from scanner.signatures.model import SPECIAL_PARTS

SIGS = load_signatures()
N = MAX_PART_CHARS
ADVERSARIAL = [
    " " * N,
    "a" + " " * (N - 2) + "b",
    "a" * N,
    "a " * (N // 2),
    "x" + "\t" * (N - 2) + "y",
    "Login to " + "x" * (N // 2) + " " * (N // 2 - 10) + "y",
    "HP HTTP Server; a" + " " * (N - 20),
    "HP HTTP Server; " + "a - " * (N // 4 - 4),
    "V" + "1." * (N // 2 - 1),
    "<" * N,
    "onvif://www.onvif.org/hardware/" + " " * (N - 40) + "x",
    "Synology" + " " * (N - 20),
    "Linux/" + "a" * (N - 10),
]
BUDGET_S = 0.5


def _parts(signature):
    names = set()
    for item in (*signature.matchers, *signature.extractors):
        for part in item.part:
            name = part.removeprefix("fields.")
            if name in SPECIAL_PARTS or name == "*":
                continue
            names.add(name[:-2] + ".x" if name.endswith(".*") else name)
    return names


@pytest.mark.parametrize("signature", list(SIGS), ids=[s.id for s in SIGS])
def test_signature_is_fast_on_adversarial_text(signature):
    parts = _parts(signature)
    slowest = 0.0
    for text in ADVERSARIAL:
        observation = Observation(ip="192.0.2.1", source=signature.source[0], fields=dict.fromkeys(parts, text),
                                  raw=text)
        started = time.perf_counter()
        match_one(signature, observation)
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < BUDGET_S, f"{signature.id}: {slowest:.2f}s on adversarial input"
