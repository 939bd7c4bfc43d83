"""HTTP/1.x request heads: RFC 7230 §3 (message format), §3.1.1 (request line), §3.2 (header
fields), §3.3.2 (Content-Length), §3.3.1 (Transfer-Encoding), §3.5 (robustness); bodies never kept."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.passive.httphead import MAX_PATH, MAX_VALUE, HttpHead, parse_request_head
from tests.discovery.helpers import mutations

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"FACE-PIXELS" * 20  # synthetic picture bytes

UPLOAD = (
    b"POST /api/v1/face/upload?dev=DS-2CD7A26 HTTP/1.1\r\n"  # request-line: method SP request-target SP version
    b"Host: Face.Ulucu.COM:8080\r\n"  # header-field: field-name ":" OWS field-value OWS
    b"User-Agent: HIK-Uploader/2.1\r\n"
    b"content-type:   image/jpeg  \r\n"  # field names are case-insensitive (§3.2); OWS is trimmed
    b"Content-Length: 231\r\n"
    b"X-Device-Serial: DS-2CD7A26G0-IZS20210101\r\n"
    b"\r\n"  # the empty line ending the head
) + JPEG


def test_upload_head_inline() -> None:
    head = parse_request_head(UPLOAD)
    assert head == HttpHead(
        method="POST",
        path="/api/v1/face/upload?dev=DS-2CD7A26",
        path_truncated=False,
        version="HTTP/1.1",
        host="face.ulucu.com:8080",
        content_type="image/jpeg",
        content_length=231,
        user_agent="HIK-Uploader/2.1",
        chunked=False,
        complete=True,
    )


def test_the_body_is_never_kept() -> None:
    head = parse_request_head(UPLOAD)
    assert head is not None
    assert not any(b"FACE-PIXELS".decode() in str(value) for value in _values(head))
    assert "JFIF" not in repr(head)


def _values(head: HttpHead) -> list[object]:
    return [getattr(head, name) for name in HttpHead.__slots__]  # type: ignore[attr-defined]


def test_bare_lf_line_ends_are_accepted() -> None:
    """§3.5: a recipient MAY recognise a single LF as a line terminator."""
    head = parse_request_head(b"PUT /snap.jpg HTTP/1.0\nHost: cloud.test\nContent-Length: 5\n\nhello")
    assert head is not None and (head.method, head.host, head.content_length, head.complete) == (
        "PUT", "cloud.test", 5, True,
    )  # fmt: skip


def test_head_cut_short_by_the_segment() -> None:
    head = parse_request_head(UPLOAD[:90])  # the request line, Host, and part of User-Agent
    assert head is not None and head.host == "face.ulucu.com:8080" and not head.complete
    assert head.content_type == ""


def test_request_line_cut_short() -> None:
    head = parse_request_head(b"POST /very/long/path?with=a" + b"x" * 3000)
    assert head is not None and (head.method, head.version, head.path_truncated) == ("POST", "", True)
    assert len(head.path) == MAX_PATH
    head = parse_request_head(b"GET /x HTT")
    assert head is not None and head.version == "" and head.path == "/x"


def test_long_values_are_bounded_and_unprintables_escaped() -> None:
    head = parse_request_head(b"GET / HTTP/1.1\r\nUser-Agent: " + b"A" * 5000 + b"\r\nHost: a\x01b\xff\r\n\r\n")
    assert head is not None and len(head.user_agent) == MAX_VALUE
    assert head.host == "a\\x01b\\xff"


def test_content_length_rules() -> None:
    """§3.3.2: a list of identical values is one length; differing values or non-digits are invalid."""

    def length(*values: bytes) -> int | None:
        head = parse_request_head(b"POST /u HTTP/1.1\r\n" + b"".join(b"Content-Length: " + v + b"\r\n" for v in values))
        assert head is not None
        return head.content_length

    assert length(b"42") == 42
    assert length(b"42, 42") == 42
    assert length(b"42", b"42") == 42
    assert length(b"42", b"43") is None
    assert length(b"-1") is None
    assert length(b"1e3") is None
    assert length(b"9" * 30) is None
    assert length() is None


def test_chunked_upload() -> None:
    """§3.3.1: chunked last in Transfer-Encoding means no Content-Length up front."""
    head = parse_request_head(b"POST /u HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n")
    assert head is not None and head.chunked and head.content_length is None


def test_obsolete_folding_and_nameless_lines_are_ignored() -> None:
    head = parse_request_head(
        b"GET / HTTP/1.1\r\n"
        b"Host: a.test\r\n"
        b" folded continuation\r\n"  # obs-fold (§3.2.4)
        b": no name\r\n"
        b"nonsense\r\n"
        b"\r\n"
    )
    assert head is not None and head.host == "a.test" and head.complete


def test_first_host_wins() -> None:
    head = parse_request_head(b"GET / HTTP/1.1\r\nHost: first.test\r\nHost: second.test\r\n\r\n")
    assert head is not None and head.host == "first.test"


def test_not_requests() -> None:
    assert parse_request_head(b"HTTP/1.1 200 OK\r\n\r\n") is None  # a response: "HTTP/1.1" is not a token
    assert parse_request_head(b"\x16\x03\x01\x02\x00") is None
    assert parse_request_head(b"") is None
    assert parse_request_head(b"GET\r\n") is None
    assert parse_request_head(b"GET /x\r\nHost: a\r\n\r\n") is None  # no version on a complete line
    assert parse_request_head(b"GET /x HTTP/one\r\n\r\n") is None
    assert parse_request_head(b"G(T /x HTTP/1.1\r\n\r\n") is None  # "(" is not a tchar (§3.2.6)


@settings(max_examples=500, deadline=None)
@given(data=st.one_of(st.binary(max_size=300), mutations(UPLOAD[:200])))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    head = parse_request_head(data)
    if head is not None:
        assert len(head.path) <= 4 * MAX_PATH and len(head.user_agent) <= 4 * MAX_VALUE
        assert head.content_length is None or head.content_length >= 0
