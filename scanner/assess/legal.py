"""Legal provisions a finding touches, per jurisdiction (``--jurisdiction cn|eu|us-il``).

Every fact here comes from shared/reference/clouds.md §3 ("Legal references for an inspector's
report") and the case list at its top; URLs are the sources that note gives. Where the note marks
a fact as not confirmed, the entry carries ``note: "UNCERTAIN: ..."`` and the reader sees it.
This is a pointer for an inspector's file, not legal advice: which provisions a finding touches,
not a conclusion that they were breached.

Each reference is a flat ``dict[str, str]`` (the result document's ``findings[].legal[]``)::

    {"law": ..., "article": ..., "summary": ..., "jurisdiction": "cn", "url": ..., "note": ...}

``url`` and ``note`` only when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass

from scanner.errors import UsageError

JURISDICTIONS = ("cn", "eu", "us-il")

PIPL = "Personal Information Protection Law of the PRC (PIPL, in force 2021-11-01)"
CRPL = "Consumer Rights Protection Law of the PRC (CRPL)"
FRT_MEASURES = ("Measures for the Security Management of Facial Recognition Technology Application "
                "(CAC and MPS Order No. 19, effective 2025-06-01)")
GDPR = "General Data Protection Regulation (EU) 2016/679 (GDPR)"
BIPA = "Illinois Biometric Information Privacy Act (BIPA, 740 ILCS 14)"


@dataclass(frozen=True)
class Provision:
    law: str
    article: str
    summary: str
    jurisdiction: str
    url: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, str]:
        out = {"law": self.law, "article": self.article, "summary": self.summary, "jurisdiction": self.jurisdiction}
        if self.url:
            out["url"] = self.url
        if self.note:
            out["note"] = self.note
        return out


PROVISIONS: dict[str, Provision] = {
    # ---- China -----------------------------------------------------------------------------------
    "pipl-26": Provision(
        PIPL, "Art. 26",
        "Image-capture and personal-identification equipment in public places must be necessary for public "
        "security, comply with state rules and carry conspicuous signs; the images may be used only for public "
        "security unless the individual consents.",
        "cn", "https://personalinformationprotectionlaw.com/PIPL/article-26/"),
    "pipl-28": Provision(
        PIPL, "Art. 28",
        "Biometric information is sensitive personal information: processing it needs a specific purpose, "
        "sufficient necessity and strict protection.",
        "cn", "https://personalinformationprotectionlaw.com/PIPL/article-28/"),
    "pipl-29": Provision(
        PIPL, "Art. 29",
        "Processing sensitive personal information requires the individual's separate consent (written consent "
        "where a law requires it).",
        "cn", "https://m.mp.oeeee.com/a/BAAFRD000020210820587619.html",
        "content as reported by the source, which does not print the article number (standard PIPL numbering)"),
    "crpl-29": Provision(
        CRPL, "Art. 29 para. 1",
        "Collecting and using consumers' personal information must be lawful, proper and necessary; the purpose, "
        "method and scope must be stated, the consumer must consent and the rules must be published. Cited in the "
        "Xpeng (2021, 431,623 face photos uploaded, fined 100,000 yuan) and Yuzhou (2022, fined 200,000 yuan) "
        "face-capture camera decisions.",
        "cn", "http://m.shoulawyer.com/zhishi/104460.htm"),
    "crpl-56": Provision(
        CRPL, "Art. 56 para. 1 item (9)",
        "Penalty for infringing consumers' personal-information rights: an order to correct, a warning, "
        "confiscation, and a fine of 1-10 times the illegal gains, or up to 500,000 yuan where there are none; "
        "in serious cases suspension or licence revocation.",
        "cn", "https://finance.sina.com.cn/jjxw/2021-12-16/doc-ikyakumx4474708.shtml"),
    "frt-local": Provision(
        FRT_MEASURES, "processing rules",
        "Face data is to be stored inside the recognition device and not transmitted over the internet unless a "
        "law requires it or the person separately consents; specific purpose and sufficient necessity, notice, "
        "separate consent (a guardian's for children under 14), shortest retention, and a prior personal-"
        "information impact assessment.",
        "cn", "https://jdc.huawei.com/jdc/refactor/viewthread?tid=1139447",
        "UNCERTAIN: the rules are confirmed in CAC summaries, but their article numbers are not"),
    "frt-13": Provision(
        FRT_MEASURES, "Art. 13",
        "Face-recognition devices in public places only where necessary for public safety, with a reasonable "
        "capture area and prominent signs.",
        "cn", "http://www.xhc998.com/a/xinwendongtai/356.html"),
    "frt-15": Provision(
        FRT_MEASURES, "Art. 15",
        "A processor storing face information of 100,000 or more persons must file with the provincial CAC "
        "within 30 working days.",
        "cn", "https://www.cac.gov.cn/2025-05/30/c_1750315544241157.htm"),
    # ---- EU --------------------------------------------------------------------------------------
    "gdpr-9": Provision(
        GDPR, "Art. 9(1), 9(2)",
        "Processing biometric data for the purpose of uniquely identifying a person is prohibited unless an "
        "Art. 9(2) exception applies (explicit consent, substantial public interest under law, ...).",
        "eu", "https://www.gdprsummary.com/gdpr-definitions/biometric-data/"),
    "gdpr-4-14": Provision(
        GDPR, "Art. 4(14), Recital 51",
        "Biometric data includes facial images processed by specific technical means; photographs count as "
        "biometric data only when processed to identify or authenticate a person.",
        "eu", "https://guidelines.panelfit.eu/biometrics/exposition-and-step-by-step-guidelines/definitions/"
        "special-categories-of-personal-data/"),
    "gdpr-35": Provision(
        GDPR, "Art. 35",
        "A data protection impact assessment is expected before processing biometric data.",
        "eu", "", "UNCERTAIN: standard GDPR text, not re-checked in the reference notes"),
    # ---- Illinois --------------------------------------------------------------------------------
    "bipa-10": Provision(
        BIPA, "§10",
        "A 'biometric identifier' includes a scan of face geometry; photographs themselves are excluded.",
        "us-il", "https://ilga.gov/legislation/ilcs/fulltext.asp?DocName=074000140K15"),
    "bipa-15": Provision(
        BIPA, "§15(a), (b), (d)",
        "A public retention policy with destruction when the purpose is met or within 3 years; written notice of "
        "the collection, its purpose and term and a written release before collection; no disclosure without "
        "consent.",
        "us-il", "https://ilga.gov/legislation/ilcs/fulltext.asp?DocName=074000140K15"),
    "bipa-20": Provision(
        BIPA, "§20",
        "Liquidated damages of $1,000 per negligent and $5,000 per intentional or reckless violation (or actual "
        "damages if greater) plus fees; since the 2024-08-02 amendment, repeated §15(b)/(d) collections from the "
        "same person by the same method are a single recovery.",
        "us-il", "https://self-law.org/code/il/chapter-740/act-14/20"),
}

# Which provisions each finding kind touches. Face kinds: face pictures or face data leave, or may
# leave, the store; picture/video kinds: images of people, no evidence of face processing.
_FACE_UPLOAD: dict[str, tuple[str, ...]] = {
    "cn": ("pipl-26", "pipl-28", "pipl-29", "crpl-29", "crpl-56", "frt-local", "frt-13"),
    "eu": ("gdpr-9", "gdpr-4-14", "gdpr-35"),
    "us-il": ("bipa-10", "bipa-15", "bipa-20"),
}
_FACE_POSSIBLE: dict[str, tuple[str, ...]] = {
    "cn": ("pipl-26", "pipl-28", "pipl-29", "frt-local", "frt-13"),
    "eu": ("gdpr-9", "gdpr-4-14", "gdpr-35"),
    "us-il": ("bipa-10", "bipa-15", "bipa-20"),
}
_FACE_DATA: dict[str, tuple[str, ...]] = {
    "cn": ("pipl-28", "pipl-29", "frt-local"),
    "eu": ("gdpr-9", "gdpr-4-14", "gdpr-35"),
    "us-il": ("bipa-10", "bipa-15", "bipa-20"),
}
_FACE_LIBRARY: dict[str, tuple[str, ...]] = {
    "cn": ("pipl-28", "pipl-29", "crpl-29", "frt-15"),
    "eu": ("gdpr-9", "gdpr-4-14", "gdpr-35"),
    "us-il": ("bipa-10", "bipa-15", "bipa-20"),
}
_PICTURES: dict[str, tuple[str, ...]] = {
    "cn": ("pipl-26", "crpl-29", "crpl-56"),
    "eu": ("gdpr-4-14",),
    "us-il": ("bipa-10",),
}
_VIDEO: dict[str, tuple[str, ...]] = {
    "cn": ("pipl-26",),
    "eu": ("gdpr-4-14",),
    "us-il": ("bipa-10",),
}
KIND_PROVISIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "face-upload": _FACE_UPLOAD,
    "face-upload-configured": _FACE_UPLOAD,
    "snapshot-upload-unknown": _FACE_UPLOAD,
    "face-cloud-enabled": _FACE_POSSIBLE,
    "face-api-non-camera": _FACE_DATA,
    "face-library": _FACE_LIBRARY,
    "picture-upload": _PICTURES,
    "picture-upload-configured": _PICTURES,
    "video-cloud": _VIDEO,
    "cloud-registered": _VIDEO,
    "cloud-unknown": _VIDEO,
}


def check_jurisdiction(jurisdiction: str) -> str:
    """``jurisdiction`` if known, else UsageError (one line)."""
    if jurisdiction not in JURISDICTIONS:
        raise UsageError(f"unknown jurisdiction {jurisdiction!r}: use one of {', '.join(JURISDICTIONS)}")
    return jurisdiction


def legal_refs(kind: str, jurisdiction: str) -> list[dict[str, str]]:
    """The provisions a finding of ``kind`` touches in ``jurisdiction``, as result-document dicts (fresh copies)."""
    keys = KIND_PROVISIONS.get(kind, _VIDEO)[check_jurisdiction(jurisdiction)]
    return [PROVISIONS[key].as_dict() for key in keys]
