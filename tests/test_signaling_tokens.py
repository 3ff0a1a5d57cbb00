import base64
import json
import re

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling.errors import ProtocolError
from signaling.messages import MAX_NAME_CHARS, MAX_TOKEN_CHARS
from signaling.roles import Role
from signaling.tokens import (
    JOIN_CODE_ALPHABET,
    AdminClaims,
    JoinClaims,
    TokenAuthority,
    new_join_code,
    normalize_join_code,
)

SECRET = b"k" * 32
# Far from the real clock: a token valid only around NOW proves no clock is read.
NOW = 1_000.0


@pytest.fixture
def authority():
    return TokenAuthority(SECRET)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def payload_of(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def refused(call, code="bad-token"):
    with pytest.raises(ProtocolError) as info:
        call()
    assert info.value.code == code
    return info.value


# --- join tokens ----------------------------------------------------------------------------------


def test_join_round_trip(authority):
    token = authority.issue_join("h1", Role.judge, "张法官", NOW, 60.0, participant_key="inv-7")
    claims = authority.verify_join(token, NOW + 59.0)
    assert claims == JoinClaims(
        hearing_id="h1",
        role=Role.judge,
        name="张法官",
        participant_key="inv-7",
        expires_at=NOW + 60.0,
    )
    assert type(claims.role) is Role


def test_join_round_trip_with_the_court(authority):
    token = authority.issue_join(
        "h1", Role.defendant, "张某", NOW, 60.0, participant_key="inv-8", court="shiqu"
    )
    assert payload_of(token)["court"] == "shiqu"
    claims = authority.verify_join(token, NOW)
    assert (claims.court, claims.participant_key) == ("shiqu", "inv-8")


def test_token_without_the_court_claim_means_the_hearings_court(authority):
    # Made as tokens were before the claim existed (and as invitations without a court still are).
    token = authority.issue_join("h1", Role.judge, "张法官", NOW, 60.0, participant_key="inv-7")
    assert "court" not in payload_of(token)
    old = {
        "aud": "tingshen:join",
        "iat": NOW,
        "exp": NOW + 60.0,
        "hid": "h1",
        "role": "judge",
        "name": "张法官",
        "pk": "inv-7",
    }
    for genuine in (token, jwt.encode(old, SECRET, algorithm="HS256")):
        claims = authority.verify_join(genuine, NOW)
        assert claims.court is None
        assert claims == JoinClaims("h1", Role.judge, "张法官", "inv-7", NOW + 60.0)


@pytest.mark.parametrize("court", ["", "a", "Shiqu", "石渠", "shiqu\n", "x" * 33, 7, ["shiqu"]])
def test_malformed_court_claim_is_refused(authority, court):
    payload = payload_of(authority.issue_join("h1", Role.judge, "A", NOW, 60.0, court="shiqu"))
    payload["court"] = court
    refused(lambda: authority.verify_join(jwt.encode(payload, SECRET, algorithm="HS256"), NOW))
    if isinstance(court, str):
        refused(
            lambda: authority.issue_join("h1", Role.judge, "A", NOW, 60.0, court=court),
            "bad-message",
        )


def test_default_participant_key_is_random_and_kept_across_verifies(authority):
    first = authority.issue_join("h1", Role.party, "A", NOW, 60.0)
    second = authority.issue_join("h1", Role.party, "A", NOW, 60.0)
    key = authority.verify_join(first, NOW).participant_key
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", key)
    assert authority.verify_join(first, NOW + 1).participant_key == key
    assert authority.verify_join(second, NOW).participant_key != key


def test_expired_at_exactly_exp(authority):
    token = authority.issue_join("h1", Role.party, "A", NOW, 30.0)
    authority.verify_join(token, NOW + 29.999)
    error = refused(lambda: authority.verify_join(token, NOW + 30.0), "token-expired")
    assert error.fatal


def test_forged_signature(authority):
    forged = TokenAuthority(b"x" * 32).issue_join("h1", Role.judge, "A", NOW, 60.0)
    assert refused(lambda: authority.verify_join(forged, NOW)).fatal


def test_alg_none_refused(authority):
    genuine = authority.issue_join("h1", Role.party, "A", NOW, 60.0)
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    unsigned = f"{header}.{genuine.split('.')[1]}."
    refused(lambda: authority.verify_join(unsigned, NOW))


def test_other_hmac_algorithm_refused(authority):
    genuine = authority.issue_join("h1", Role.party, "A", NOW, 60.0)
    other = jwt.encode(payload_of(genuine), SECRET * 2, algorithm="HS512")
    refused(lambda: authority.verify_join(other, NOW))


def test_tampered_payload(authority):
    header, _, signature = authority.issue_join("h1", Role.witness, "A", NOW, 60.0).split(".")
    payload = payload_of(f"{header}.{_}.{signature}")
    payload["role"] = "judge"
    tampered = f"{header}.{b64(json.dumps(payload).encode())}.{signature}"
    refused(lambda: authority.verify_join(tampered, NOW))


def test_admin_token_is_not_a_join_token_and_back(authority):
    admin = authority.issue_admin("ops", NOW, 60.0)
    archivist = authority.issue_admin("li", NOW, 60.0, role=Role.archivist)
    join = authority.issue_join("h1", Role.judge, "A", NOW, 60.0)
    refused(lambda: authority.verify_join(admin, NOW))
    refused(lambda: authority.verify_join(archivist, NOW))
    refused(lambda: authority.verify_admin(join, NOW))


def test_audience_list_is_not_accepted(authority):
    payload = payload_of(authority.issue_join("h1", Role.judge, "A", NOW, 60.0))
    payload["aud"] = ["tingshen:join", "tingshen:admin"]
    both = jwt.encode(payload, SECRET, algorithm="HS256")
    refused(lambda: authority.verify_join(both, NOW))
    refused(lambda: authority.verify_admin(both, NOW))


@pytest.mark.parametrize("missing", ["exp", "iat", "aud", "hid", "role", "name", "pk"])
def test_missing_claim(authority, missing):
    payload = payload_of(authority.issue_join("h1", Role.judge, "A", NOW, 60.0))
    del payload[missing]
    refused(lambda: authority.verify_join(jwt.encode(payload, SECRET, algorithm="HS256"), NOW))


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("exp", "2000"),
        ("exp", True),
        ("iat", NOW + 120),  # issued after it expires
        ("role", "emperor"),
        ("role", ["judge"]),
        ("name", ""),
        ("name", "\u202eevil"),
        ("name", 7),
        ("hid", ""),
        ("pk", None),
    ],
)
def test_malformed_claim(authority, claim, value):
    payload = payload_of(authority.issue_join("h1", Role.judge, "A", NOW, 60.0))
    payload[claim] = value
    refused(lambda: authority.verify_join(jwt.encode(payload, SECRET, algorithm="HS256"), NOW))


def test_oversize_token_refused_before_signature_check(authority):
    payload = payload_of(authority.issue_join("h1", Role.judge, "A", NOW, 60.0))
    payload["padding"] = "x" * MAX_TOKEN_CHARS
    big = jwt.encode(payload, SECRET, algorithm="HS256")
    error = refused(lambda: authority.verify_join(big, NOW))
    assert "at most" in error.message


@pytest.mark.parametrize(
    "garbage", ["", "abc", "a.b.c", "...", "é.é.é", "\ud800", "a" * 5000, None, b"x.y.z"]
)
def test_garbage(authority, garbage):
    error = refused(lambda: authority.verify_join(garbage, NOW))
    assert error.fatal
    refused(lambda: authority.verify_admin(garbage, NOW))


@given(st.text(max_size=300))
def test_arbitrary_text_is_refused_as_bad_token(text):
    with pytest.raises(ProtocolError) as info:
        TokenAuthority(SECRET).verify_join(text, NOW)
    assert info.value.code == "bad-token"


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_arbitrary_segments_are_refused_as_bad_token(header, payload):
    token = f"{b64(header)}.{b64(payload)}.{b64(b'sig')}"
    with pytest.raises(ProtocolError) as info:
        TokenAuthority(SECRET).verify_join(token, NOW)
    assert info.value.code == "bad-token"


def test_largest_possible_join_token_fits(authority):
    # Astral characters take 12 bytes each in PyJWT's ASCII JSON before base64.
    name = "\U00020000" * MAX_NAME_CHARS
    token = authority.issue_join(
        "h" * 128, Role.interpreter, name, NOW, 1e9, "k" * 128, court="c" * 32
    )
    assert len(token) <= MAX_TOKEN_CHARS
    assert authority.verify_join(token, NOW).name == name


@pytest.mark.parametrize("name", ["བཀྲ་ཤིས་", "Ліна", "  王 五  ", "a" * MAX_NAME_CHARS])
def test_names_of_every_script_are_kept(authority, name):
    token = authority.issue_join("h1", Role.party, name, NOW, 60.0)
    assert authority.verify_join(token, NOW).name == name.strip()


@pytest.mark.parametrize(
    "name", ["", "   ", "a" * (MAX_NAME_CHARS + 1), "bad\nname", "\u202ereversed", "\x00", 5]
)
def test_issue_refuses_bad_names(authority, name):
    refused(lambda: authority.issue_join("h1", Role.party, name, NOW, 60.0), "bad-message")


@pytest.mark.parametrize(
    ("hearing_id", "ttl", "now", "key"),
    [
        ("", 60.0, NOW, None),
        ("h" * 129, 60.0, NOW, None),
        ("h1", 0.0, NOW, None),
        ("h1", -5.0, NOW, None),
        ("h1", float("nan"), NOW, None),
        ("h1", 60.0, float("inf"), None),
        ("h1", 60.0, NOW, ""),
        ("h1", 60.0, NOW, "k\n"),
    ],
)
def test_issue_refuses_bad_arguments(authority, hearing_id, ttl, now, key):
    refused(lambda: authority.issue_join(hearing_id, Role.party, "A", now, ttl, key), "bad-message")


@pytest.mark.parametrize("role", [Role.archivist, Role.admin])
def test_no_join_tokens_for_roles_outside_hearings(authority, role):
    refused(lambda: authority.issue_join("h1", role, "A", NOW, 60.0), "bad-message")


def test_secret_must_be_long_enough_and_stays_out_of_repr():
    with pytest.raises(ValueError):
        TokenAuthority(b"short")
    with pytest.raises(ValueError):
        TokenAuthority("k" * 32)
    assert "kkkk" not in repr(TokenAuthority(SECRET))


# --- admin tokens ---------------------------------------------------------------------------------


def test_admin_round_trip(authority):
    token = authority.issue_admin("ops", NOW, 300.0)
    assert authority.verify_admin(token, NOW) == AdminClaims("ops", Role.admin, NOW + 300.0)
    token = authority.issue_admin("li", NOW, 300.0, role=Role.archivist)
    assert authority.verify_admin(token, NOW).role is Role.archivist


def test_admin_token_expires(authority):
    token = authority.issue_admin("ops", NOW, 300.0)
    assert refused(lambda: authority.verify_admin(token, NOW + 300.0), "token-expired").fatal


def test_admin_tokens_only_for_admins_and_archivists(authority):
    refused(lambda: authority.issue_admin("x", NOW, 60.0, role=Role.judge), "bad-message")
    payload = payload_of(authority.issue_admin("ops", NOW, 60.0))
    payload["role"] = "judge"
    forged_role = jwt.encode(payload, SECRET, algorithm="HS256")
    refused(lambda: authority.verify_admin(forged_role, NOW))


# --- join codes -----------------------------------------------------------------------------------


def test_join_code_shape():
    code = new_join_code(bytes(range(8)))
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", code)
    assert code == new_join_code(bytes(range(8)))
    assert code != new_join_code(bytes(range(1, 9)))


def test_alphabet_has_no_look_alikes():
    assert not set("0O1IL") & set(JOIN_CODE_ALPHABET)
    assert len(set(JOIN_CODE_ALPHABET)) == len(JOIN_CODE_ALPHABET) == 31


def test_join_code_needs_eight_random_bytes():
    with pytest.raises(ValueError):
        new_join_code(b"1234567")


@given(st.binary(min_size=8, max_size=32))
def test_new_codes_are_already_normalized(random_bytes):
    code = new_join_code(random_bytes)
    assert normalize_join_code(code) == code
    assert normalize_join_code(code.lower().replace("-", " ")) == code


@pytest.mark.parametrize("typed", ["abcd-efgh", "ABCDEFGH", " ab cd ef gh ", "AB-CD-EF-GH"])
def test_normalize_forgives_case_spaces_and_dashes(typed):
    assert normalize_join_code(typed) == "ABCD-EFGH"


@pytest.mark.parametrize(
    "typed", ["", "ABCD-EFG", "ABCD-EFGHJ", "ABCD-EFG0", "ABCD-EFGO", "abcd-efgi", "A" * 100, None]
)
def test_normalize_refuses(typed):
    refused(lambda: normalize_join_code(typed), "bad-message")


@given(st.text(max_size=50))
def test_normalize_arbitrary_text(text):
    try:
        code = normalize_join_code(text)
    except ProtocolError as error:
        assert error.code == "bad-message"
    else:
        assert normalize_join_code(code) == code
