"""The HTTP seam and the login guard, with a canned transport adapter (no sockets)."""

from __future__ import annotations

import io

import requests
from requests.adapters import BaseAdapter

from scanner.audit.context import DeviceAudit, refused_after_credentials
from scanner.audit.creds import parse_credentials
from scanner.audit.records import AUTH_FAILED, LOCKED, PARTIAL
from scanner.audit.runner import audit_device, settle
from scanner.audit.transport import DeviceHttp, LoginGuard, NetSettings
from scanner.models import Device, Service

SECRET = "Very-Secret-42"
CHALLENGE = 'Digest qop="auth", realm="IP Camera(12345)", nonce="abc123", stale="FALSE"'


class CannedAdapter(BaseAdapter):
    """Answers every request from ``answer(request)``; records what was sent."""

    def __init__(self, answer):
        super().__init__()
        self.answer = answer
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.sent.append(request)
        status, headers, body = self.answer(request)
        resp = requests.Response()
        resp.status_code = status
        resp.headers.update(headers)
        resp.raw = io.BytesIO(body)
        resp.request = request
        resp.url = request.url
        resp.connection = self
        return resp

    def close(self):
        pass


def digest_device(password_ok: bool, *, lock_body: bytes = b""):
    """A device that challenges, then accepts (or refuses) whatever digest it gets."""

    def answer(request):
        if "Authorization" not in request.headers:
            return 401, {"WWW-Authenticate": CHALLENGE}, b""
        if password_ok:
            return 200, {}, b"<DeviceInfo><model>DS-1</model></DeviceInfo>"
        return 401, {"WWW-Authenticate": CHALLENGE}, lock_body

    return answer


def credential():
    return parse_credentials([{"match": "*", "username": "admin", "password": SECRET}]).credentials[0]


def test_a_digest_challenge_is_not_a_failed_login():
    adapter = CannedAdapter(digest_device(True))
    guard = LoginGuard()
    http = DeviceHttp("198.51.100.5", 80, tls=False, credential=credential(), guard=guard,
                      net=NetSettings(adapter=adapter))
    reply = http.get("/ISAPI/System/deviceInfo")
    assert reply is not None and reply.status == 200 and reply.sent_credentials
    assert not refused_after_credentials(reply)
    assert [("Authorization" in r.headers) for r in adapter.sent] == [False, True]
    assert all(SECRET not in str(r.headers) and SECRET.encode() not in (r.body or b"") for r in adapter.sent)
    assert adapter.sent[0].url == "http://198.51.100.5:80/ISAPI/System/deviceInfo"


def test_a_401_after_credentials_is_a_refusal_and_nothing_more_is_sent():
    adapter = CannedAdapter(digest_device(False))
    audit = DeviceAudit(Device(ip="198.51.100.5", vendor="Hikvision", services=[Service(80, "tcp", "http")]),
                        credential(), NetSettings(adapter=adapter))
    from scanner.audit import hikvision

    hikvision.audit(audit)
    assert audit.guard.state == "failed" and audit.guard.attempts == 1
    sent_with_auth = [r for r in adapter.sent if "Authorization" in r.headers]
    assert len(sent_with_auth) == 1
    before = len(adapter.sent)
    assert audit.http(80).get("/ISAPI/System/capabilities") is None  # the guard refuses to send
    assert len(adapter.sent) == before
    assert settle(audit, ["isapi"]).status == AUTH_FAILED


def test_a_hikvision_lock_answer_is_reported_locked():
    lock = (b"<userCheck><statusValue>401</statusValue><lockStatus>lock</lockStatus>"
            b"<unlockTime>1800</unlockTime></userCheck>")
    adapter = CannedAdapter(digest_device(False, lock_body=lock))
    device = Device(ip="198.51.100.5", vendor="Hikvision", services=[Service(80, "tcp", "http"),
                                                                     Service(3702, "udp", "wsd")])
    creds = parse_credentials([{"match": "*", "username": "admin", "password": SECRET}])
    record, _report = audit_device(device, creds, NetSettings(adapter=adapter))
    assert record.status == LOCKED
    assert "unlocks in 1800 s" in record.detail and "1 login attempt" in record.detail
    assert SECRET not in record.detail
    # ONVIF was next in line: after the lock answer nothing carrying a credential was sent.
    assert sum("Authorization" in r.headers for r in adapter.sent) == 1
    assert not any(b"UsernameToken" in (r.body or b"") for r in adapter.sent)


def test_requests_never_use_proxies_from_the_environment(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("http_proxy", "http://proxy.invalid:3128")
    adapter = CannedAdapter(digest_device(True))
    http = DeviceHttp("198.51.100.5", 80, tls=False, credential=credential(), guard=LoginGuard(),
                      net=NetSettings(adapter=adapter, port_map={80: 10080}))
    http.get("/x")
    assert http.session.trust_env is False
    assert adapter.sent[0].url.startswith("http://198.51.100.5:10080/")  # the port map applies, no proxy


def test_only_reads():
    http = DeviceHttp("198.51.100.5", 80, tls=False, credential=credential(), guard=LoginGuard(),
                      net=NetSettings(adapter=CannedAdapter(digest_device(True))))
    for method in ("PUT", "DELETE", "PATCH"):
        try:
            http.request(method, "/ISAPI/System/Network/EZVIZ")
        except ValueError:
            continue
        raise AssertionError(f"{method} was allowed")


def test_a_refusal_after_a_good_login_is_partial():
    calls = {"n": 0}

    def answer(request):
        calls["n"] += 1
        if "Authorization" not in request.headers:
            return 401, {"WWW-Authenticate": CHALLENGE}, b""
        if "deviceInfo" in request.url:
            return 200, {}, b"<DeviceInfo><model>DS-1</model></DeviceInfo>"
        return 401, {"WWW-Authenticate": CHALLENGE}, b""  # e.g. the account was changed meanwhile

    adapter = CannedAdapter(answer)
    device = Device(ip="198.51.100.5", vendor="Hikvision", services=[Service(80, "tcp", "http")])
    creds = parse_credentials([{"match": "*", "username": "admin", "password": SECRET}])
    record, report = audit_device(device, creds, NetSettings(adapter=adapter))
    assert record.status == PARTIAL
    assert report is not None and report.read == ["isapi:/ISAPI/System/deviceInfo"]
    refused = [r for r in adapter.sent if "Authorization" in r.headers and "deviceInfo" not in r.url]
    assert len(refused) == 1  # one refused request, then nothing


def test_a_stale_nonce_is_retried_but_a_refused_digest_is_not():
    nonces = iter(["n1", "n2", "n3"])
    state = {"nonce": next(nonces)}

    def answer(request):
        header = request.headers.get("Authorization", "")
        if not header:
            return 401, {"WWW-Authenticate": f'Digest qop="auth", realm="r", nonce="{state["nonce"]}"'}, b""
        if f'nonce="{state["nonce"]}"' not in header:  # an expired nonce: the device says stale=true
            return 401, {"WWW-Authenticate": f'Digest qop="auth", realm="r", nonce="{state["nonce"]}", '
                         'stale="true"'}, b""
        return 200, {}, b"ok"

    adapter = CannedAdapter(answer)
    http = DeviceHttp("198.51.100.5", 80, tls=False, credential=credential(), guard=LoginGuard(),
                      net=NetSettings(adapter=adapter))
    assert http.get("/a").status == 200
    state["nonce"] = next(nonces)  # the device rotates its nonce
    reply = http.get("/b")
    assert reply is not None and reply.status == 200
    assert [("Authorization" in r.headers) for r in adapter.sent] == [False, True, True, True]
