"""The render's YAML writer: the bytes of PyYAML's pure-Python emitter (`yaml.SafeDumper`, block
style, keys in the order given, lines folded at 100), written mostly by LibYAML's emitter.

LibYAML's emitter (PyYAML's `CSafeDumper`) is about ten times faster than PyYAML's pure-Python
one and writes the same bytes wherever both pick the same style and fold at the same column:
with the same representer and resolver, that is every document whose keys are printable ASCII,
non-empty and shorter than 123 characters (PyYAML's `check_simple_key` counts the implicit
`!!str` tag, 5 characters, towards its limit of 128 and writes a longer key as `? key`; LibYAML's
`yaml_emitter_check_simple_key` counts the key alone, and takes an empty one too) and whose
strings are printable ASCII with no space beside a line break, so that they are written plain or
single-quoted (`yaml_emitter_write_plain_scalar`/`write_single_quoted_scalar` fold exactly as
`write_plain`/`write_single_quoted` do).

A string that needs double quotes (a line break beside a space, as in an indented PromQL
expression; a character outside printable ASCII) is folded differently by the two. Such a string
is written by PyYAML's own `Emitter.write_double_quoted`, spliced into LibYAML's output: LibYAML
writes a plain placeholder in its place, at the column where PyYAML's opening quote would
follow, and the splice gives the PyYAML writer that column and the indentation PyYAML would be
at (its `expect_scalar` indents one step past the key or `-` that owns the scalar). Every other
document (a long or empty key, a placeholder that does not sit where that rule holds) is written
by the pure-Python emitter. tests/test_render_yaml.py holds the result to the pure-Python bytes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

import yaml
import yaml.emitter

#: The options every manifest is written with.
DUMP_OPTIONS: dict[str, Any] = {"sort_keys": False, "default_flow_style": False, "width": 100}
FAST_DUMPER: type[yaml.SafeDumper] | None = (
    getattr(yaml, "CSafeDumper", None) if yaml.__with_libyaml__ else None
)
MAX_SIMPLE_KEY = 128 - len("!!str")

#: What LibYAML writes in place of a double-quoted string: a plain scalar no manifest holds
#: (a document with a string that starts like it is written by the pure-Python emitter).
_PLACEHOLDER = "appstack-double-quoted-"
#: A placeholder's line in LibYAML's output: indentation, an optional `- `, an optional key
#: (a plain key never starts with `- `; `- - ` is a sequence in a sequence, not handled).
_PLACEHOLDER_LINE = re.compile(
    r"^(?P<indent> *)(?P<dash>- )?(?P<key>(?!- )\S.*: )?"
    + re.escape(_PLACEHOLDER)
    + r"(?P<index>\d+)$"
)


class _PurePythonOnly(Exception):
    """The document holds something LibYAML would not write byte for byte as PyYAML does."""


def _plain_or_single_quoted(text: str) -> bool:
    """True if both emitters write `text` alike: printable ASCII, no space beside a break."""
    return text.isascii() and (
        text.isprintable()
        or (text.replace("\n", "").isprintable() and " \n" not in text and "\n " not in text)
    )


def _simple_key(key: object) -> bool:
    return (
        isinstance(key, str)
        and 0 < len(key) < MAX_SIMPLE_KEY
        and key.isascii()
        and key.isprintable()
        and not key.startswith(_PLACEHOLDER)
    )


def _for_libyaml(value: Any, quoted: list[str]) -> Any:
    """`value` with each double-quoted string replaced by a placeholder (the strings are
    appended to `quoted`, the placeholder names its index). Raises _PurePythonOnly for what
    LibYAML cannot write alike."""
    if isinstance(value, str):
        if value.startswith(_PLACEHOLDER):
            raise _PurePythonOnly
        if _plain_or_single_quoted(value):
            return value
        # Anything else PyYAML double-quotes: its `analyze_scalar` disallows plain and single
        # quotes for a character outside printable ASCII and a line break (special
        # characters, allow_unicode off), a space before a break (space_break) and a space
        # after one (break_space); `choose_scalar_style` then takes double quotes.
        quoted.append(value)
        return f"{_PLACEHOLDER}{len(quoted) - 1}"
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not _simple_key(key):
                raise _PurePythonOnly
            out[key] = _for_libyaml(item, quoted)
        return out
    if isinstance(value, list):
        return [_for_libyaml(item, quoted) for item in value]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    raise _PurePythonOnly


def same_in_both_emitters(value: Any) -> bool:
    """True if LibYAML alone writes `value` byte for byte as PyYAML's pure-Python emitter."""
    quoted: list[str] = []
    try:
        _for_libyaml(value, quoted)
    except _PurePythonOnly:
        return False
    return not quoted


def _pyyaml_double_quoted(text: str, column: int, indent: int) -> str:
    """`text` as PyYAML writes a double-quoted mapping value or sequence item: its emitter at
    `column` (after the `:` or `-`) and at indentation `indent`."""
    stream = io.StringIO()
    emitter = yaml.emitter.Emitter(stream, width=DUMP_OPTIONS["width"])
    emitter.column, emitter.indent = column, indent
    emitter.whitespace = emitter.indention = False
    emitter.write_double_quoted(text, split=True)
    return stream.getvalue()


def _splice(text: str, quoted: list[str]) -> str | None:
    """LibYAML's output with each placeholder replaced by PyYAML's double-quoted string;
    None if a placeholder is not alone at the end of a `key: ` or `- ` line."""
    lines = text.split("\n")
    found = 0
    for number, line in enumerate(lines):
        if _PLACEHOLDER not in line:
            continue
        match = _PLACEHOLDER_LINE.match(line)
        if match is None or not (match["dash"] or match["key"]):
            return None
        # PyYAML's expect_scalar indents one step (2) past the key or `-` owning the scalar
        owner = len(match["indent"]) + (2 if match["dash"] and match["key"] else 0)
        head = line[: match.start("index") - len(_PLACEHOLDER)]
        lines[number] = head[:-1] + _pyyaml_double_quoted(
            quoted[int(match["index"])], column=len(head) - 1, indent=owner + 2
        )
        found += 1
    return "\n".join(lines) if found == len(quoted) else None


def dump(obj: Mapping[str, Any]) -> str:
    """One object as a YAML document, byte for byte what `yaml.dump(obj, Dumper=SafeDumper,
    **DUMP_OPTIONS)` writes."""
    data = dict(obj)
    if FAST_DUMPER is not None:
        quoted: list[str] = []
        try:
            form = _for_libyaml(data, quoted)
        except _PurePythonOnly:
            pass
        else:
            text: str = yaml.dump(form, Dumper=FAST_DUMPER, **DUMP_OPTIONS)
            spliced = _splice(text, quoted) if quoted else text
            if spliced is not None:
                return spliced
    pure: str = yaml.dump(data, Dumper=yaml.SafeDumper, **DUMP_OPTIONS)
    return pure
