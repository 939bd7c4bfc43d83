"""The credentials file: formats, precedence (ip > mac > cidr > vendor > *), one-line errors without secrets."""

from __future__ import annotations

import pytest

from scanner.audit.creds import Secret, load_credentials, normalize_mac, parse_credentials
from scanner.errors import UsageError

SECRET = "Hunter2-do-not-print!"


def entry(match: object, password: str = SECRET, **extra: object) -> dict[str, object]:
    return {"match": match, "username": "admin", "password": password, **extra}


def test_most_specific_entry_wins_in_the_documented_order():
    creds = parse_credentials([
        entry("*", "p-any"),
        entry({"vendor": "Hikvision"}, "p-vendor"),
        entry("198.51.100.0/24", "p-cidr24"),
        entry("198.51.100.0/28", "p-cidr28"),
        entry("44-19-B6-D6-23-7B", "p-mac"),
        entry("198.51.100.9", "p-ip"),
    ])

    def pick(ip: str, mac: str | None = None, vendor: str | None = None) -> str:
        found = creds.for_device(ip, mac, vendor)
        assert found is not None
        return found.password.reveal()

    assert pick("198.51.100.9", "44:19:b6:d6:23:7b", "Hikvision") == "p-ip"
    assert pick("198.51.100.10", "44:19:b6:d6:23:7b", "Hikvision") == "p-mac"
    assert pick("198.51.100.10", None, "Hikvision") == "p-cidr28"  # longest prefix first
    assert pick("198.51.100.200", None, "Hikvision") == "p-cidr24"
    assert pick("203.0.113.5", None, "hikvision") == "p-vendor"  # vendor match ignores case
    assert pick("203.0.113.5", None, "Dahua") == "p-any"


def test_a_device_no_entry_matches_gets_no_credential():
    creds = parse_credentials({"credentials": [entry("198.51.100.9"), entry({"vendor": "Dahua"})]})
    assert creds.for_device("198.51.100.10", None, "Hikvision") is None
    assert creds.for_device("198.51.100.10", None, None) is None


def test_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("CAMSWEEP_TEST_PW", SECRET)
    creds = parse_credentials([{"match": "*", "username": "admin", "password_env": "CAMSWEEP_TEST_PW"}])
    assert creds.credentials[0].password.reveal() == SECRET


def test_password_prompt_asks_once_per_entry_and_refuses_without_a_terminal():
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return SECRET

    creds = parse_credentials([entry("198.51.100.9", "prompt")], prompt=prompt)
    assert creds.credentials[0].password.reveal() == SECRET
    assert asked == ["password for admin on ip 198.51.100.9: "]
    with pytest.raises(UsageError, match="needs a terminal"):
        parse_credentials([entry("198.51.100.9", "prompt")], prompt=None)


def test_secrets_never_print_themselves():
    creds = parse_credentials([entry("*")])
    cred = creds.credentials[0]
    for text in (repr(cred), str(cred), repr(cred.password), str(cred.password), repr(creds), cred.label):
        assert SECRET not in text
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")


@pytest.mark.parametrize(("data", "message"), [
    ([], "non-empty list"),
    ({"creds": []}, "unknown top-level key"),
    (["just a string"], "must be a mapping"),
    ([{"username": "admin", "password": SECRET}], "missing 'match'"),
    ([{"match": "*", "password": SECRET}], "username"),
    ([{"match": "*", "username": "admin"}], "exactly one of password, password_env"),
    ([{"match": "*", "username": "admin", "password": SECRET, "password_env": "X"}], "exactly one"),
    ([{"match": "*", "username": "admin", "password": 123456}], "quote it"),
    ([{"match": "*", "username": "admin", "password_env": "CAMSWEEP_SURELY_UNSET_VAR"}], "is not set"),
    ([entry({"ip": "300.1.1.1"})], "not an IP address"),
    ([entry({"mac": "zz:zz"})], "not a MAC"),
    ([entry({"cidr": "10.0.0.0/40"})], "not a network"),
    ([entry({"serial": "x"})], "unknown match kind"),
    ([entry({"ip": "1.2.3.4", "mac": "44:19:b6:d6:23:7b"})], "exactly one of ip"),
    ([entry("*"), entry("*")], "same match as entry 1"),
    ([entry("*", pasword="typo")], "unknown key"),
])
def test_bad_entries_are_one_line_errors_that_never_quote_the_password(data, message):
    with pytest.raises(UsageError, match=message) as info:
        parse_credentials(data)
    assert "\n" not in str(info.value)
    assert SECRET not in str(info.value)


def test_file_errors(tmp_path):
    with pytest.raises(UsageError, match="cannot read credentials file"):
        load_credentials(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f'credentials:\n  - match: "*"\n    username: admin\n    password: "{SECRET}\n  - [\n')
    with pytest.raises(UsageError) as info:
        load_credentials(bad)
    assert "not valid YAML" in str(info.value)
    assert SECRET not in str(info.value)  # the YAML parser's message would quote the line
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UsageError, match="not UTF-8"):
        load_credentials(binary)
    good = tmp_path / "good.yaml"
    good.write_text(f'- match: "198.51.100.0/24"\n  username: admin\n  password: "{SECRET}"\n')
    assert load_credentials(good).for_device("198.51.100.7") is not None


def test_mac_forms():
    assert normalize_mac("44-19-B6-D6-23-7B") == "44:19:b6:d6:23:7b"
    assert normalize_mac("4419b6d6237b") == "44:19:b6:d6:23:7b"
    assert normalize_mac("44:19-b6:d6:23:7b") is None  # mixed separators
    assert normalize_mac("Hikvision") is None
