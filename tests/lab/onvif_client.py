"""A minimal ONVIF SOAP client for tests: envelopes and WS-UsernameToken headers.

PasswordDigest = Base64(SHA-1(nonce ‖ created ‖ password)) (OASIS UsernameToken profile 1.0,
protocols.md §5.3); ``created_at`` lets a test speak in a skewed device's clock.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid

SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
TDS = "http://www.onvif.org/ver10/device/wsdl"
TAN = "http://www.onvif.org/ver20/analytics/wsdl"
TEV = "http://www.onvif.org/ver10/events/wsdl"
TT = "http://www.onvif.org/ver10/schema"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"


def username_token(user: str, password: str, created_at: float | None = None) -> str:
    """A ``<s:Header>`` carrying a WS-Security UsernameToken with a PasswordDigest."""
    nonce = os.urandom(16)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if created_at is None else created_at))
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
    return (f'<s:Header><wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
            f"<wsse:Username>{user}</wsse:Username>"
            f'<wsse:Password Type="{PROFILE}#PasswordDigest">{digest}</wsse:Password>'
            f'<wsse:Nonce EncodingType="{PROFILE}#Base64Binary">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
            f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>")


def envelope(operation: str, namespace: str = TDS, *, token: tuple[str, str] | None = None,
             created_at: float | None = None) -> bytes:
    """A SOAP 1.2 request for an empty-bodied ONVIF operation, signed when ``token`` is given."""
    header = username_token(*token, created_at=created_at) if token else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{SOAP_ENV}">{header}'
            f'<s:Body><{operation} xmlns="{namespace}"/></s:Body></s:Envelope>').encode()


def ws_discovery_probe(types: str = "dn:NetworkVideoTransmitter") -> tuple[str, bytes]:
    """(MessageID, datagram) of a WS-Discovery Probe for ``types`` (protocols.md §5.1)."""
    msg_id = f"uuid:{uuid.uuid4()}"
    probe = (
        f'<?xml version="1.0" encoding="UTF-8"?><e:Envelope xmlns:e="{SOAP_ENV}" '
        'xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
        'xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><e:Header>'
        f"<w:MessageID>{msg_id}</w:MessageID><w:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>"
        "<w:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action></e:Header>"
        f"<e:Body><d:Probe><d:Types>{types}</d:Types></d:Probe></e:Body></e:Envelope>"
    ).encode()
    return msg_id, probe
