"""The credentials file: which username/password belongs to which device.

YAML, a list of entries (top level, or under ``credentials:``)::

    credentials:
      - match: 198.51.100.92            # one address
        username: admin
        password_env: CAM_ENTRANCE_PW   # read from the environment
      - match: {mac: "44:19:b6:d6:23:7b"}
        username: admin
        password: prompt                # asked once on the terminal, before the scan
      - match: 198.51.100.0/24          # a network
        username: admin
        password: "S3cret!"             # literal (quote it)
      - match: {vendor: Dahua}          # the vendor the scan identified
        username: admin
        password_env: DAHUA_PW
      - match: "*"                      # every other device
        username: admin
        password_env: DEFAULT_PW

``match`` is a string (``*``, an address, a CIDR, a MAC, otherwise a vendor name) or a mapping
with one of ``ip``, ``mac``, ``cidr``, ``vendor``. The most specific matching entry wins:
address, then MAC, then CIDR (longest prefix first), then vendor, then ``*``. A device gets only
the credential of its winning entry, so a password is never sent to a device its entry does not
match. Errors are one line (``UsageError``, exit 2) and never quote a password: YAML syntax
errors give the line number only.

Passwords live in ``Secret`` objects whose ``repr``/``str`` are masked, so an accidental log
line or traceback does not print them.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scanner.errors import UsageError

MATCH_KINDS = ("ip", "mac", "cidr", "vendor", "any")
# Lower rank = more specific.
RANK = {"ip": 0, "mac": 1, "cidr": 2, "vendor": 3, "any": 4}
ENTRY_KEYS = {"match", "username", "password", "password_env", "note"}
PROMPT = "prompt"
MAX_FILE_BYTES = 256 * 1024
_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$")
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Prompter = Callable[[str], str]


class Secret:
    """A password that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The password, for the one place that hashes or sends it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", len(self._value)))


@dataclass(frozen=True)
class Credential:
    username: str
    password: Secret
    kind: str  # one of MATCH_KINDS
    pattern: str  # normalised match value ("" for any)
    entry: int  # 1-based position in the file

    @property
    def label(self) -> str:
        """Where it came from, for result details: never the username or password."""
        what = "*" if self.kind == "any" else f"{self.kind} {self.pattern}"
        return f"credentials entry {self.entry} ({what})"


def normalize_mac(text: str) -> str | None:
    """``44-19-B6-D6-23-7B`` / ``4419b6d6237b`` -> ``44:19:b6:d6:23:7b``; None if not a MAC."""
    raw = text.strip().lower()
    if not _MAC_RE.match(raw):
        return None
    digits = raw.replace(":", "").replace("-", "")
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def _classify(value: Any, where: str) -> tuple[str, str]:
    """(kind, normalised pattern) of a ``match`` value."""
    if isinstance(value, dict):
        if len(value) != 1:
            raise UsageError(f"{where}: match needs exactly one of ip, mac, cidr, vendor")
        key, raw = next(iter(value.items()))
        key = str(key).lower()
        if key not in ("ip", "mac", "cidr", "vendor"):
            raise UsageError(f"{where}: unknown match kind {key!r} (use ip, mac, cidr or vendor)")
        if not isinstance(raw, str) or not raw.strip():
            raise UsageError(f"{where}: match {key} needs a non-empty string")
        text = raw.strip()
        if key == "ip":
            try:
                return "ip", str(ipaddress.ip_address(text))
            except ValueError:
                raise UsageError(f"{where}: {text!r} is not an IP address") from None
        if key == "mac":
            mac = normalize_mac(text)
            if mac is None:
                raise UsageError(f"{where}: {text!r} is not a MAC address")
            return "mac", mac
        if key == "cidr":
            try:
                return "cidr", str(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise UsageError(f"{where}: {text!r} is not a network (CIDR)") from None
        return "vendor", text.lower()
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where}: match must be *, an address, a CIDR, a MAC, a vendor or a mapping")
    text = value.strip()
    if text == "*":
        return "any", ""
    try:
        return "ip", str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if "/" in text:
        try:
            return "cidr", str(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise UsageError(f"{where}: {text!r} is not a network (CIDR)") from None
    mac = normalize_mac(text)
    if mac is not None:
        return "mac", mac
    return "vendor", text.lower()


def _password(entry: dict[str, Any], where: str, user: str, kind: str, pattern: str,
              prompt: Prompter | None) -> Secret:
    has_literal = "password" in entry
    has_env = "password_env" in entry
    if has_literal == has_env:
        raise UsageError(f"{where}: give exactly one of password, password_env")
    if has_env:
        name = entry["password_env"]
        if not isinstance(name, str) or not name.strip():
            raise UsageError(f"{where}: password_env must name an environment variable")
        value = os.environ.get(name.strip())
        if value is None:
            raise UsageError(f"{where}: environment variable {name.strip()} is not set")
        return Secret(value)
    raw = entry["password"]
    if not isinstance(raw, str):
        raise UsageError(f"{where}: password must be a string (quote it in the YAML file)")
    if raw == PROMPT:
        if prompt is None:
            raise UsageError(f"{where}: 'password: prompt' needs a terminal (use password_env in scripts)")
        target = "every device" if kind == "any" else f"{kind} {pattern}"
        return Secret(prompt(f"password for {user} on {target}: "))
    return Secret(raw)


def terminal_prompt() -> Prompter | None:
    """getpass on an interactive terminal; None when stdin is not one (scripts, CI)."""
    if not sys.stdin.isatty():
        return None
    return lambda text: getpass.getpass(text)


def parse_credentials(data: Any, *, source: str = "credentials", prompt: Prompter | None = None) -> CredentialSet:
    """Validate an already-loaded YAML document."""
    entries = data.get("credentials") if isinstance(data, dict) else data
    if isinstance(data, dict) and set(data) - {"credentials"}:
        extra = ", ".join(sorted(map(str, set(data) - {"credentials"})))
        raise UsageError(f"{source}: unknown top-level key(s) {extra} (expected a list under 'credentials:')")
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{source}: expected a non-empty list of entries (match, username, password...)")
    creds: list[Credential] = []
    seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(entries, start=1):
        where = f"{source}: entry {index}"
        if not isinstance(entry, dict):
            raise UsageError(f"{where}: must be a mapping with match, username and a password source")
        unknown = set(map(str, entry)) - ENTRY_KEYS
        if unknown:
            raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if "match" not in entry:
            raise UsageError(f"{where}: missing 'match'")
        kind, pattern = _classify(entry["match"], where)
        user = entry.get("username")
        if not isinstance(user, str) or not user.strip() or any(not ch.isprintable() for ch in user):
            raise UsageError(f"{where}: username must be a non-empty printable string")
        if (kind, pattern) in seen:
            raise UsageError(f"{where}: same match as entry {seen[(kind, pattern)]}")
        seen[(kind, pattern)] = index
        creds.append(Credential(user.strip(), _password(entry, where, user.strip(), kind, pattern, prompt),
                                kind, pattern, index))
    return CredentialSet(creds)


def load_credentials(path: Path | str, *, prompt: Prompter | None = None) -> CredentialSet:
    """Read and validate a credentials file; UsageError (one line, no secrets) on any problem."""
    file = Path(path)
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise UsageError(f"{file}: larger than {MAX_FILE_BYTES // 1024} KiB; not a credentials file")
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{file}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read credentials file {file}: {exc.strerror or exc}") from None
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 (safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        # The YAML message quotes the offending line, which may hold a password: never show it.
        raise UsageError(f"{file}: not valid YAML{where}") from None
    return parse_credentials(data, source=str(file), prompt=prompt)


class CredentialSet:
    """Credentials by match; ``for_device`` picks the most specific entry."""

    def __init__(self, credentials: list[Credential]) -> None:
        self.credentials = list(credentials)
        self._networks = {
            c.pattern: ipaddress.ip_network(c.pattern) for c in self.credentials if c.kind == "cidr"
        }

    def __len__(self) -> int:
        return len(self.credentials)

    def __repr__(self) -> str:
        return f"CredentialSet({len(self.credentials)} entries)"

    def for_device(self, ip: str, mac: str | None = None, vendor: str | None = None,
                   brand: str | None = None) -> Credential | None:
        """The winning entry for a device, or None: ip > mac > cidr (longest prefix) > vendor > *."""
        try:
            addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(ip)
        except ValueError:
            addr = None
        mac_norm = normalize_mac(mac) if mac else None
        names = {n.strip().lower() for n in (vendor, brand) if n}
        best: tuple[tuple[int, int], Credential] | None = None
        for cred in self.credentials:
            key: tuple[int, int] | None = None
            if cred.kind == "ip" and addr is not None and cred.pattern == str(addr):
                key = (RANK["ip"], 0)
            elif cred.kind == "mac" and mac_norm is not None and cred.pattern == mac_norm:
                key = (RANK["mac"], 0)
            elif cred.kind == "cidr" and addr is not None:
                net = self._networks[cred.pattern]
                if addr.version == net.version and addr in net:
                    key = (RANK["cidr"], -net.prefixlen)
            elif cred.kind == "vendor" and cred.pattern in names:
                key = (RANK["vendor"], 0)
            elif cred.kind == "any":
                key = (RANK["any"], 0)
            if key is not None and (best is None or key < best[0]):
                best = (key, cred)
        return best[1] if best is not None else None

    def secrets(self) -> list[str]:
        """Every password (for tests that check no output contains one)."""
        return [c.password.reveal() for c in self.credentials]
