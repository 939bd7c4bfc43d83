"""Device signatures: detection knowledge as data (``signatures/**/<id>.yaml``), examples as tests.

    from scanner.signatures import load_signatures
    sigs = load_signatures()                     # the shipped set; SignatureError lists every problem
    for m in sigs.match(observation):            # every matching signature, in file order
        m.signature_id, m.certainty, m.claims, m.detail
    sigs.match_model("Hikvision", "iDS-2CD7A46G0-IZHS")   # model knowledge (face_capable, device_type)
    problems = validate(path)                    # all problems of a directory, never raises
"""

from __future__ import annotations

from scanner.signatures.loader import SignatureError, default_root, load_signatures, observation_from_dict, validate
from scanner.signatures.matcher import SignatureSet
from scanner.signatures.model import Example, Extractor, Info, Match, Matcher, Signature

__all__ = [
    "Example",
    "Extractor",
    "Info",
    "Match",
    "Matcher",
    "Signature",
    "SignatureError",
    "SignatureSet",
    "default_root",
    "load_signatures",
    "observation_from_dict",
    "validate",
]
