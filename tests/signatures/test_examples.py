"""Recog's self-test: every shipped signature's examples are tests.

For each signature: every example matches it and yields exactly ``expect`` (same keys, same
values, same types), every counter-example does not match, and no other signature for the same
source that matches the example claims something different for what it expects.
"""

from __future__ import annotations

import pytest

from scanner.signatures import SignatureSet, default_root, validate
from scanner.signatures.loader import _load
from scanner.signatures.matcher import match_one
from scanner.signatures.model import SOURCES

SIGNATURES, LOAD_PROBLEMS = _load(default_root(), check=False)
SET = SignatureSet(SIGNATURES)
ORDER = {s.id: i for i, s in enumerate(SIGNATURES)}


def test_shipped_signatures_have_no_problems():
    problems = validate()
    assert problems == [], "\n".join(problems)


def test_shipped_set_covers_every_probe_source():
    covered = {source for s in SIGNATURES for source in s.source}
    missing = set(SOURCES) - {"arp"} - covered  # ARP says only a MAC; the oui source reads it
    assert not missing
    assert len(SET.for_source("model")) >= 10


@pytest.mark.parametrize("signature", SIGNATURES, ids=[s.id for s in SIGNATURES])
def test_examples_are_tests(signature):
    assert 1 <= len(signature.examples) <= 20
    for index, example in enumerate(signature.examples, 1):
        found = match_one(signature, example.observation)
        assert found is not None, f"example {index} does not match"
        assert found.claims == example.expect, f"example {index}"
        for key, value in example.expect.items():
            assert type(found.claims[key]) is type(value), f"example {index}: {key} type"
        assert found.signature_id == signature.id and found.certainty == signature.certainty
        for other in SET.for_source(example.observation.source):
            if other.id == signature.id:
                continue
            theirs = match_one(other, example.observation)
            if theirs is None:
                continue
            for key, value in example.expect.items():
                if key in theirs.claims:
                    when = "earlier" if ORDER[other.id] < ORDER[signature.id] else "later"
                    assert theirs.claims[key] == value, (
                        f"example {index}: {other.id} ({when}) claims {key}={theirs.claims[key]!r}")
    for index, counter in enumerate(signature.counter_examples, 1):
        assert match_one(signature, counter.observation) is None, f"counter-example {index} matches"


@pytest.mark.parametrize("signature", SIGNATURES, ids=[s.id for s in SIGNATURES])
def test_face_claims_have_a_basis(signature):
    if "face_capable" in signature.claims:
        assert signature.info.references
        assert signature.certainty <= 0.8
