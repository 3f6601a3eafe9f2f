"""The boundary of a multipart form, read from its content type as the provider's form parser reads it:
where Python's email (either policy) and Go's mime could read the parameters differently, no boundary."""

from __future__ import annotations

import email.message
import email.policy
import email.utils

import pytest

from ccproxy_core.forwarding.form_boundary import form_boundary


def pythons_boundaries(content_type: str) -> set[str]:
    """The boundary as Python's email reads it, with its old (compat32) and its default policy."""
    old = email.message.Message()
    old["content-type"] = content_type
    new = email.message.EmailMessage()
    new["content-type"] = content_type
    return {email.utils.collapse_rfc2231_value(old.get_param("boundary")), new.get_boundary()}


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/form-data; x="y;boundary=AAA"; boundary=BBB',  # a quoted value is one value
        "multipart/form-data; boundary = BBB",
        "multipart/form-data ;boundary=BBB;",
        "multipart/form-data; boundary*=utf-8''BBB",  # RFC 2231, which Go's mime decodes too
        "multipart/form-data; boundary*0=B; boundary*1=BB",
        "multipart/form-data; a=1; boundary*=utf-8''B%42B; " + "; ".join(f"p{i}=v" for i in range(500)),
        "multipart/form-data; boundary*0*=utf-8''%42" + "".join(f"; boundary*{i}*=%42" for i in range(1, 70)),
    ],
)
def test_the_boundary_is_the_one_pythons_email_parser_reads(content_type):
    # A boundary read otherwise than the provider reads it delimits other parts: a cheaper model's.
    (expected,) = pythons_boundaries(content_type)
    assert form_boundary(content_type) == expected.encode()


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=A; boundary=B", None),  # parsers disagree on which
        ("multipart/form-data; boundary=A junk", None),
        ("multipart/form-data; boundary=" + "x" * 71, None),
        ("multipart/form-data; boundary*=utf-8''" + "%42" * 71, None),
        ("multipart/form-data; " + "; ".join(f"boundary*{i}=B" for i in range(71)), None),  # 71 characters
        ("multipart/form-data; boundary*=utf-8''B%42B", b"BBB"),
        ("multipart/form-data; boundary=abc123", b"abc123"),
        ('Multipart/Form-Data; charset=utf-8; boundary="a b:c"', b"a b:c"),
        ("application/json", None),
        ("multipart/form-data", None),
        (None, None),
    ],
)
def test_the_boundary_comes_from_a_multipart_form_content_type_only(content_type, boundary):
    assert form_boundary(content_type) == boundary


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary*0=ab; boundary*2=ef",  # a gap: Go's mime and email's new policy stop at it
        "multipart/form-data; boundary*0=ab; boundary*0=ef",  # Go's mime refuses a parameter given twice
        "multipart/form-data; boundary*0=ab; boundary*0*=ef",
        "multipart/form-data; boundary*0=ab; boundary*01=ef",  # Go's mime knows piece 1 by "1" only
        "multipart/form-data; boundary*=x-unknown''ab%65f",  # Go's mime knows UTF-8 and US-ASCII only
        "multipart/form-data; boundary*=ab%65f",  # no charset
        "multipart/form-data; boundary*=utf-8''ab%6",  # a broken escape
        "multipart/form-data; boundary*=utf-8''ab; boundary*0=ef",
        "multipart/form-data; boundary*0=a'b'c; boundary*1*=%65",  # email finds a charset in the joined value
        'multipart/form-data; boundary="abc "',  # email drops the space, Go's mime keeps it
        'multipart/form-data; boundary="abc\t"',
        "multipart/form-data; boundary*=utf-8''abc%20",
        'multipart/form-data; boundary="a\\bc"',  # email's new policy drops the backslash, the old one keeps it
        'multipart/form-data; x="\\\\"; boundary=abc',  # the old policy's quote count takes all for one value
        'multipart/form-data; boundary="a\\\\";',
        "multipart/form-data; boundary=ab:cd",  # the new policy cuts a token at ":", "*", "'" and the like
        "multipart/form-data; boundary=abc*",
        "multipart/form-data; boundary=''abc",
        "multipart/form-data; boundary*0= ab; boundary*1 =cd",  # the new policy reads spaced pieces otherwise
        'multipart/form-data; boundary="<ab>"',  # email takes the angle brackets off
        'multipart/form-data; boundary="a\\"b"',  # an escaped quote: no boundary character
        "multipart/form-data; boundary*0=utf-8''abc",  # the new policy finds a charset in a plain piece
        "multipart/form-data; boundary*0=abc; boundary*1=d/e",  # "/" ends a token for the new policy
        "multipart/form-data; name=a(b; boundary=xyz",  # and "(" ends its parameter list
        "multipart/form-data; boundary*=utf-8''a'b",  # a tick past the charset's
        'multipart/form-data; boundary="=?utf-8?q?abc?="',  # the new policy decodes an encoded word: "abc"
    ],
)
def test_a_boundary_the_parsers_could_read_differently_is_none(content_type):
    assert form_boundary(content_type) is None


def test_a_boundary_cut_in_escaped_and_plain_pieces_is_read_as_the_parsers_agree():
    content_type = "multipart/form-data; boundary*0*=utf-8''a%62; boundary*1=c%64; boundary*2*=%65"
    assert pythons_boundaries(content_type) == {"abc%64e"}
    assert form_boundary(content_type) == b"abc%64e"


@pytest.mark.parametrize(
    "boundary",
    [
        "6f1c3a2b9d8e4f7a0b1c2d3e4f5a6b7c",  # httpx and requests: 32 hex digits
        "------------------------d74496d66958873e",  # curl
        "----WebKitFormBoundary7MA4YWxkTrZu0gW",  # Chromium and Safari
        "----geckoformboundary4c2a9e0b7f5d3a1c",  # Firefox
        "--------------------------515890814546601021194782",  # Node's form-data
        "----formdata-undici-0123456789",  # Node's fetch
        "a4e1f2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d",  # Go's mime/multipart writer
    ],
)
def test_the_boundaries_real_clients_write_are_read(boundary):
    for content_type in (f"multipart/form-data; boundary={boundary}", f'multipart/form-data; boundary="{boundary}"'):
        assert pythons_boundaries(content_type) == {boundary}
        assert form_boundary(content_type) == boundary.encode()
