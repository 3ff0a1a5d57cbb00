import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling.errors import ProtocolError
from signaling.hearing import Court, Hearing, HearingKind
from signaling.messages import (
    MAX_CANDIDATE_CHARS,
    MAX_MESSAGE_BYTES,
    MAX_SDP_BYTES,
    MAX_TOKEN_CHARS,
    Answer,
    ByeReason,
    Candidate,
    IceServer,
    Join,
    Leave,
    LeaveReason,
    Mute,
    encode_bye,
    encode_error,
    encode_offer,
    encode_participant_joined,
    encode_participant_left,
    encode_participant_updated,
    encode_track_published,
    encode_welcome,
    parse_client_message,
)
from signaling.roles import Role
from signaling.tokens import JoinClaims

PROTOCOL = Path(__file__).resolve().parents[1] / "signaling" / "PROTOCOL.md"
SDP_CORPUS = (
    Path(__file__).resolve().parents[2] / "shared" / "fuzz-corpora" / "janus" / "sdp_fuzzer"
)
SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def refused(data, code):
    with pytest.raises(ProtocolError) as info:
        parse_client_message(data)
    assert info.value.code == code, info.value
    assert info.value.fatal is False
    return info.value


def msg(**fields) -> str:
    return json.dumps(fields)


# --- valid client messages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (msg(type="join", token="abc"), Join("abc")),
        (msg(type="answer", sdp=SDP, offerId=3), Answer(SDP, 3)),
        (msg(type="answer", sdp="v=0\nx=1\n", offerId=0), Answer("v=0\nx=1\n", 0)),
        (
            msg(type="candidate", candidate="candidate:1 1 udp 1 1.2.3.4 5 typ host", sdpMid="0",
                sdpMLineIndex=0),
            Candidate("candidate:1 1 udp 1 1.2.3.4 5 typ host", "0", 0),
        ),
        (msg(type="candidate", candidate="", sdpMid=None, sdpMLineIndex=None),
         Candidate("", None, None)),
        (msg(type="candidate", candidate="c", sdpMLineIndex=2), Candidate("c", None, 2)),
        (msg(type="mute", kind="video", muted=True), Mute("video", True)),
        (msg(type="leave"), Leave()),
        (msg(type="leave", id=7, note="short", ok=False, x=None, f=1.5), Leave()),
    ],
)  # fmt: skip
def test_parses(text, expected):
    assert parse_client_message(text) == expected


def test_token_and_sdp_stay_out_of_repr():
    assert "secret" not in repr(Join("secret"))
    assert "o=-" not in repr(Answer(SDP, 1))


# --- refusals, in the order they are checked ------------------------------------------------------


@pytest.mark.parametrize("frame", [b'{"type":"leave"}', bytearray(b"{}"), memoryview(b"")])
def test_binary_frames_refused(frame):
    refused(frame, "bad-message")


def test_size_is_checked_before_json():
    refused("x" * (MAX_MESSAGE_BYTES + 1), "too-large")
    # Fewer characters than the limit, but more UTF-8 bytes.
    refused('"' + "中" * (MAX_MESSAGE_BYTES // 3 + 1) + '"', "too-large")
    padding = " " * (MAX_MESSAGE_BYTES - len(msg(type="leave")))
    assert parse_client_message(msg(type="leave") + padding) == Leave()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "{'type': 'leave'}",
        '{"type": "leave",}',
        '{"type": NaN}',
        '{"type": "mute", "kind": "audio", "muted": Infinity}',
        '{"type": "leave", "type": "join"}',
        '{"type": "join", "token": "a", "token": "b"}',
        "[" * 100_000,
        '{"type": "answer", "offerId": ' + "9" * 5000 + "}",
    ],
)
def test_bad_json(text):
    refused(text, "bad-json")


@pytest.mark.parametrize(
    "text", ["[]", "null", "3", '"join"', "{}", '{"type": 1}', '{"type": null}', '{"kind": "x"}']
)
def test_bad_envelope(text):
    refused(text, "bad-message")


def test_unknown_type_is_named_but_clipped():
    error = refused(msg(type="offer", sdp=SDP), "unknown-type")
    assert "'offer'" in error.message
    error = refused(msg(type="z" * 10_000), "unknown-type")
    assert len(error.message) < 100


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "join"},
        {"type": "join", "token": ""},
        {"type": "join", "token": 5},
        {"type": "join", "token": "t" * (MAX_TOKEN_CHARS + 1)},
        {"type": "answer", "offerId": 1},
        {"type": "answer", "sdp": SDP},
        {"type": "answer", "sdp": None, "offerId": 1},
        {"type": "answer", "sdp": SDP, "offerId": True},
        {"type": "answer", "sdp": SDP, "offerId": -1},
        {"type": "answer", "sdp": SDP, "offerId": 1.0},
        {"type": "answer", "sdp": SDP, "offerId": "1"},
        {"type": "answer", "sdp": SDP, "offerId": 2**53},
        {"type": "candidate"},
        {"type": "candidate", "candidate": None, "sdpMid": "0"},
        {"type": "candidate", "candidate": "c" * (MAX_CANDIDATE_CHARS + 1), "sdpMid": "0"},
        {"type": "candidate", "candidate": "c\r\na=evil", "sdpMid": "0"},
        {"type": "candidate", "candidate": "c\u00e9", "sdpMid": "0"},
        {"type": "candidate", "candidate": "c", "sdpMid": None, "sdpMLineIndex": None},
        {"type": "candidate", "candidate": "c", "sdpMid": 0},
        {"type": "candidate", "candidate": "c", "sdpMid": "m" * 65},
        {"type": "candidate", "candidate": "c", "sdpMLineIndex": -1},
        {"type": "candidate", "candidate": "c", "sdpMLineIndex": False},
        {"type": "candidate", "candidate": "c", "sdpMLineIndex": 1024},
        {"type": "candidate", "candidate": "c", "sdpMLineIndex": "0"},
        {"type": "mute", "kind": "screen", "muted": True},
        {"type": "mute", "kind": "audio", "muted": "true"},
        {"type": "mute", "kind": "audio", "muted": 1},
        {"type": "mute", "muted": True},
        {"type": "leave", "extra": "e" * 257},
        {"type": "leave", "extra": {"nested": 1}},
        {"type": "leave", "extra": [1]},
        {"type": "leave", **{f"x{i}": i for i in range(9)}},
    ],
)
def test_bad_fields(fields):
    refused(json.dumps(fields), "bad-message")


def test_longest_fields_accepted():
    token = "t" * MAX_TOKEN_CHARS
    assert parse_client_message(msg(type="join", token=token)) == Join(token)
    cand = "c" * MAX_CANDIDATE_CHARS
    assert parse_client_message(msg(type="candidate", candidate=cand, sdpMid="0")) == Candidate(
        cand, "0", None
    )


def test_sdp_size_is_measured_after_json_decoding():
    line = "a=candidate:1 1 udp 2122260223 192.168.10.20 54321 typ host generation 0\r\n"
    sdp = "v=0\r\n" + line * ((MAX_SDP_BYTES - 5) // len(line))
    sdp += "a=" + "x" * (MAX_SDP_BYTES - len(sdp) - 4) + "\r\n"
    assert len(sdp) == MAX_SDP_BYTES
    assert parse_client_message(msg(type="answer", sdp=sdp, offerId=1)) == Answer(sdp, 1)
    refused(msg(type="answer", sdp=sdp + "\n", offerId=1), "too-large")


@pytest.mark.parametrize(
    "sdp",
    ["", "v=1\r\n", "v=0", "o=- 1\r\nv=0\r\n", " v=0\r\n", "v=0\r\na=\tx\r\n", "v=0\r\n\x00",
     "v=0\r\ns=庭审\r\n", "v=0\r\n\x7f"],
)  # fmt: skip
def test_bad_sdp(sdp):
    refused(msg(type="answer", sdp=sdp, offerId=1), "bad-sdp")


# --- random input ----------------------------------------------------------------------------------


def only_message_or_protocol_error(data) -> None:
    try:
        result = parse_client_message(data)
    except ProtocolError:
        return
    assert isinstance(result, Join | Answer | Candidate | Mute | Leave)


@given(st.text())
def test_arbitrary_text(text):
    only_message_or_protocol_error(text)


@given(st.binary())
def test_arbitrary_bytes(data):
    with pytest.raises(ProtocolError):
        parse_client_message(data)


@given(st.binary().map(lambda b: b.decode("utf-8", "surrogateescape")))
def test_arbitrary_bytes_as_text(text):
    only_message_or_protocol_error(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
field_names = st.sampled_from(
    ["type", "token", "sdp", "offerId", "candidate", "sdpMid", "sdpMLineIndex", "kind", "muted"]
)


@given(
    kind=st.sampled_from(["join", "answer", "candidate", "mute", "leave"]),
    fields=st.dictionaries(field_names | st.text(max_size=5), json_values, max_size=6),
)
def test_arbitrary_fields_of_known_types(kind, fields):
    only_message_or_protocol_error(json.dumps({**fields, "type": kind}))


sdp_lines = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
client_messages = st.one_of(
    st.builds(Join, token=st.text(min_size=1, max_size=MAX_TOKEN_CHARS)),
    st.builds(
        Answer,
        sdp=st.lists(sdp_lines, max_size=20).map(lambda lines: "v=0\r\n" + "\r\n".join(lines)),
        offer_id=st.integers(min_value=0, max_value=2**53 - 1),
    ),
    st.builds(
        Candidate,
        candidate=sdp_lines,
        sdp_mid=st.text(max_size=8),
        sdp_mline_index=st.none() | st.integers(min_value=0, max_value=1023),
    ),
    st.builds(Mute, kind=st.sampled_from(["audio", "video"]), muted=st.booleans()),
    st.just(Leave()),
)


@given(client_messages)
def test_round_trip(message):
    assert parse_client_message(message.to_json()) == message


# --- the Janus SDP fuzz corpus ---------------------------------------------------------------------


def corpus_files() -> Sequence[Path | None]:
    if not SDP_CORPUS.is_dir():
        return [None]
    return sorted(SDP_CORPUS.iterdir())


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name if p else "absent")
def test_janus_sdp_corpus(path):
    if path is None:
        pytest.skip(f"SDP fuzz corpus not found at {SDP_CORPUS} (a checkout of ../shared)")
    data = path.read_bytes()
    # Readable as our light check reads it: printable ASCII and line breaks, starting with v=0.
    plausible = (
        data.startswith((b"v=0\r\n", b"v=0\n"))
        and len(data) <= MAX_SDP_BYTES
        and re.fullmatch(rb"[\x20-\x7e\r\n]*", data) is not None
    )
    for text in (data.decode("latin-1"), data.decode("utf-8", "surrogateescape")):
        wrapped = json.dumps({"type": "answer", "sdp": text, "offerId": 1})
        try:
            result = parse_client_message(wrapped)
        except ProtocolError as error:
            assert not plausible, error
            assert error.code in {"too-large", "bad-sdp"}
        else:
            assert plausible
            assert result == Answer(text, 1)
    with pytest.raises(ProtocolError):
        parse_client_message(data)


# --- server messages -------------------------------------------------------------------------------


def claims(role: Role, key: str, name: str = "A", court: str | None = None) -> JoinClaims:
    return JoinClaims("h1", role, name, key, expires_at=1e12, court=court)


@pytest.fixture
def hearing():
    hearing = Hearing("h1", "gz-zy", "(2024)川33刑初1号", HearingKind.cross_court)
    hearing.courts = {
        "gz-zy": Court("gz-zy", "甘孜藏族自治州中级人民法院"),
        "shiqu": Court("shiqu", "石渠县人民法院", "Shiqu County People's Court"),
    }
    hearing.join("p1", claims(Role.judge, "k1", "张法官"), 0.0)
    hearing.join("p2", claims(Role.observer, "k2"), 0.0)
    hearing.join("p3", claims(Role.defendant, "k3", "བཀྲ་ཤིས།", court="shiqu"), 0.0)
    hearing.admit("p1", "p2", 0.0)
    hearing.admit("p1", "p3", 0.0)
    hearing.set_muted("p3", "audio", True, 0.0)
    return hearing


def test_welcome(hearing):
    me = hearing.participants["p1"]
    ice = [
        IceServer(("stun:stun.court.example:3478",)),
        IceServer(("turn:turn.court.example:3478",), username="1700:p1", credential="c2VjcmV0"),
    ]
    assert json.loads(encode_welcome(me, hearing, ice)) == {
        "type": "welcome",
        "participant": {"id": "p1", "name": "张法官", "role": "judge",
                        "court": "gz-zy", "courtName": "甘孜藏族自治州中级人民法院"},
        "hearing": {
            "id": "h1",
            "court": "gz-zy",
            "courtName": "甘孜藏族自治州中级人民法院",
            "caseNumber": "(2024)川33刑初1号",
            "kind": "cross-court",
            "state": "open",
        },
        # Observers are not listed, nor is the participant itself.
        "participants": [
            {"id": "p3", "name": "བཀྲ་ཤིས།", "role": "defendant",
             "muted": {"audio": True, "video": False}, "court": "shiqu",
             "courtName": "石渠县人民法院", "courtNameEn": "Shiqu County People's Court"},
        ],
        "iceServers": [
            {"urls": ["stun:stun.court.example:3478"]},
            {"urls": ["turn:turn.court.example:3478"], "username": "1700:p1",
             "credential": "c2VjcmV0"},
        ],
        "admitted": True,
        "waiting": [],
    }  # fmt: skip
    assert "c2VjcmV0" not in repr(ice[1])


def test_names_are_sent_as_text(hearing):
    text = encode_participant_joined(hearing.participants["p1"])
    assert "张法官" in text
    text.encode("utf-8")


def test_offer():
    text = encode_offer(
        7, SDP, {"audio": "0", "video": "1"}, {"2": ("p3", "video"), "3": ("p3", "audio")}
    )
    assert json.loads(text) == {
        "type": "offer",
        "offerId": 7,
        "sdp": SDP,
        "publish": {"audio": "0", "video": "1"},
        "tracks": {
            "2": {"participantId": "p3", "kind": "video"},
            "3": {"participantId": "p3", "kind": "audio"},
        },
    }
    with pytest.raises(ValueError):
        encode_offer(-1, SDP, {}, {})
    with pytest.raises(ValueError):
        encode_offer(1, SDP, {"smell": "0"}, {})


def test_participant_messages(hearing):
    wire = {"id": "p3", "name": "བཀྲ་ཤིས།", "role": "defendant",
            "muted": {"audio": True, "video": False}, "court": "shiqu",
            "courtName": "石渠县人民法院", "courtNameEn": "Shiqu County People's Court"}  # fmt: skip
    p3 = hearing.participants["p3"]
    assert json.loads(encode_participant_joined(p3)) == {
        "type": "participant-joined",
        "participant": wire,
    }
    assert json.loads(encode_participant_updated(p3)) == {
        "type": "participant-updated",
        "participant": wire,
    }
    assert json.loads(encode_participant_left("p3", "disconnected")) == {
        "type": "participant-left",
        "participantId": "p3",
        "reason": "disconnected",
    }
    assert json.loads(encode_track_published("p3", "video")) == {
        "type": "track-published",
        "participantId": "p3",
        "kind": "video",
    }
    with pytest.raises(ValueError):
        encode_participant_left("p3", "vanished")
    with pytest.raises(ValueError):
        encode_track_published("p3", "smell")


def test_error_and_bye():
    error = ProtocolError("stale-answer", "answer to offer 3, latest is 4")
    assert json.loads(encode_error(error)) == {
        "type": "error",
        "code": "stale-answer",
        "message": "answer to offer 3, latest is 4",
        "fatal": False,
    }
    assert json.loads(encode_bye("replaced")) == {"type": "bye", "reason": "replaced"}
    with pytest.raises(ValueError):
        encode_bye("left")  # a participant-left reason, not a bye reason


def test_reasons_are_those_of_the_protocol():
    text = PROTOCOL.read_text(encoding="utf-8")
    left = re.search(r"\| `participant-left` \|.*\|", text)
    bye = re.search(r"\| `bye` \|.*\|", text)
    assert left and bye
    assert set(re.findall(r"`([a-z]+)`", left.group().split("reason", 1)[1])) == set(LeaveReason)
    assert set(re.findall(r"`([a-z]+)`", bye.group().split("reason", 1)[1])) == set(ByeReason)


@given(st.text(), st.booleans())
def test_error_messages_always_encode(message, fatal):
    text = encode_error(ProtocolError("bad-message", message, fatal))
    assert json.loads(text)["message"] == message
