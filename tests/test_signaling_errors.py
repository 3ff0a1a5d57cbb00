import pickle
import re
from pathlib import Path

import pytest

from signaling.errors import ErrorCode, ProtocolError

PROTOCOL = Path(__file__).resolve().parents[1] / "signaling" / "PROTOCOL.md"


def test_error_codes_are_those_of_the_protocol():
    text = PROTOCOL.read_text(encoding="utf-8")
    section = text.split("## Error codes", 1)[1].split("##", 1)[0]
    assert set(re.findall(r"`([a-z-]+)`", section)) == {code.value for code in ErrorCode}


def test_attributes_and_default_not_fatal():
    error = ProtocolError("bad-json", "invalid JSON")
    assert (error.code, error.message, error.fatal) == ("bad-json", "invalid JSON", False)
    assert ProtocolError("bad-token", "no", fatal=True).fatal is True


def test_code_is_stored_as_plain_string():
    error = ProtocolError(ErrorCode.rate_limited, "slow down")
    assert error.code == "rate-limited"
    assert type(error.code) is str


def test_unknown_code_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown protocol error code"):
        ProtocolError("bad-jsn", "typo")


def test_str_and_repr():
    error = ProtocolError("forbidden", "the hearing is full", fatal=True)
    assert str(error) == "forbidden: the hearing is full (fatal)"
    assert str(ProtocolError("bad-sdp", "x")) == "bad-sdp: x"
    assert repr(error) == "ProtocolError('forbidden', 'the hearing is full', fatal=True)"


def test_pickles():
    error = pickle.loads(pickle.dumps(ProtocolError("stale-answer", "old offer", True)))
    assert (error.code, error.message, error.fatal) == ("stale-answer", "old offer", True)
