"""The page strings in web/js/i18n.js: every language has every key, with the same placeholders.

The dictionaries are read straight from the JavaScript source (a small tokenizer for the object literal:
strings, names, comments, `+` between strings), so this needs neither a browser nor Node. Tibetan text
is also checked for the mechanical half of its orthography (tsheg and shad); whether the wording is
right is for the courts' translators.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

I18N_JS = Path(__file__).resolve().parents[1] / "web" / "js" / "i18n.js"
LANGUAGES = ("zh-CN", "en", "bo")

TOKEN = re.compile(
    r"""(?P<space>\s+|//[^\n]*|/\*.*?\*/)
      | (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<name>[A-Za-z_$][\w$]*)
      | (?P<punct>[{}:,+])""",
    re.VERBOSE | re.DOTALL,
)
PLACEHOLDER = re.compile(r"\{(\w+)\}")
TIBETAN = re.compile(r"[\u0f00-\u0fff]")
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# What a value may hold besides words: placeholders, digits, spaces and the symbols our strings use.
NOT_WORDS = re.compile(r"\{\w+\}|[\s\d.,:;!?'\"()\[\]/%·—–…+\-]")
TSHEG, SHAD = "\u0f0b", "\u0f0d"


def parse_object(tokens: list[tuple[str, str]], i: int) -> tuple[dict[str, object], int]:
    """Parse `{ key: value, ... }` starting at tokens[i]; return it and the index after `}`."""
    assert tokens[i] == ("punct", "{"), tokens[i]
    result: dict[str, object] = {}
    i += 1
    while tokens[i] != ("punct", "}"):
        kind, text = tokens[i]
        assert kind in ("string", "name"), f"expected a key, got {text!r}"
        key = json.loads(text) if kind == "string" else text
        assert tokens[i + 1] == ("punct", ":"), f"expected ':' after {key!r}"
        i += 2
        value: object
        if tokens[i] == ("punct", "{"):
            value, i = parse_object(tokens, i)
        else:
            parts = []
            while True:
                kind, text = tokens[i]
                assert kind == "string", f"{key!r}: a value must be a string literal, got {text!r}"
                parts.append(json.loads(text))
                i += 1
                if tokens[i] != ("punct", "+"):
                    break
                i += 1
            value = "".join(parts)
        assert key not in result, f"duplicate key {key!r}"
        result[key] = value
        if tokens[i] == ("punct", ","):
            i += 1
        else:
            assert tokens[i] == ("punct", "}"), f"expected ',' or '}}' after {key!r}"
    return result, i + 1


def read_dictionaries() -> dict[str, dict[str, str]]:
    source = I18N_JS.read_text(encoding="utf-8")
    start = re.search(r"^(?:export )?const DICTIONARIES = ", source, re.MULTILINE)
    assert start is not None, "DICTIONARIES not found in i18n.js"
    tokens: list[tuple[str, str]] = []
    pos = start.end()
    depth = 0
    while True:
        match = TOKEN.match(source, pos)
        assert match is not None, f"i18n.js: cannot read {source[pos : pos + 40]!r}"
        pos = match.end()
        kind = match.lastgroup or ""
        if kind == "space":
            continue
        tokens.append((kind, match.group()))
        depth += {"{": 1, "}": -1}.get(match.group(), 0) if kind == "punct" else 0
        if depth == 0:
            break
    dictionaries, _ = parse_object(tokens, 0)
    result: dict[str, dict[str, str]] = {}
    for lang, strings in dictionaries.items():
        assert isinstance(strings, dict), lang
        assert all(isinstance(value, str) for value in strings.values()), lang
        result[lang] = strings
    return result


DICTIONARIES = read_dictionaries()
REFERENCE = DICTIONARIES["zh-CN"]


def test_languages() -> None:
    assert set(DICTIONARIES) == set(LANGUAGES)
    assert DICTIONARIES["bo"]["lang.name"] == "བོད་ཡིག"


@pytest.mark.parametrize("lang", ["en", "bo"])
def test_every_key_is_translated(lang: str) -> None:
    strings = DICTIONARIES[lang]
    missing = sorted(set(REFERENCE) - set(strings))
    assert not missing, f"{lang} lacks {missing}"
    unknown = sorted(set(strings) - set(REFERENCE))  # never shown: t() reads zh-CN's keys
    assert not unknown, f"{lang} has keys zh-CN does not: {unknown}"
    empty = sorted(key for key, value in strings.items() if not value.strip())
    assert not empty, f"{lang}: empty {empty}"


@pytest.mark.parametrize("lang", ["en", "bo"])
def test_placeholders_match(lang: str) -> None:
    wrong = {
        key: (sorted(PLACEHOLDER.findall(REFERENCE[key])), sorted(PLACEHOLDER.findall(value)))
        for key, value in DICTIONARIES[lang].items()
        if key in REFERENCE
        and sorted(PLACEHOLDER.findall(REFERENCE[key])) != sorted(PLACEHOLDER.findall(value))
    }
    assert not wrong, f"{lang}: placeholders differ from zh-CN (zh-CN, {lang}): {wrong}"


def is_name(key: str) -> bool:
    """A value the same in every language is a name (the product's), not a phrase to translate."""
    return len({DICTIONARIES[lang].get(key) for lang in LANGUAGES}) == 1


def test_tibetan_strings_are_tibetan() -> None:
    not_tibetan = []
    han = []
    for key, value in DICTIONARIES["bo"].items():
        if is_name(key):
            continue
        words = NOT_WORDS.sub("", value)
        if words and not TIBETAN.search(words):
            not_tibetan.append(key)
        if HAN.search(value):
            han.append(key)
    assert not not_tibetan, f"bo: no Tibetan in {not_tibetan}"
    assert not han, f"bo: Chinese characters left in {han}"


def test_tibetan_punctuation() -> None:
    """Tsheg and shad: no tsheg before a shad except after ང, no doubled tsheg, no Chinese punctuation."""
    faults = []
    for key, value in DICTIONARIES["bo"].items():
        if re.search(f"(?<!ང){TSHEG}{SHAD}", value):
            faults.append((key, "tsheg before shad"))
        if re.search(f"ང{SHAD}", value):
            faults.append((key, "ང needs a tsheg before its shad"))
        if re.search(f"[ཀག]{SHAD}", value):
            faults.append((key, "no shad straight after a final ཀ or ག"))
        if TSHEG * 2 in value:
            faults.append((key, "doubled tsheg"))
        if re.search(r"[\u0f00-\u0fff]\.(\s|$)", value):
            faults.append((key, "a full stop after Tibetan"))
        if re.search(r"[，。：；（）、！？]", value):
            faults.append((key, "Chinese punctuation"))
    assert not faults, faults
