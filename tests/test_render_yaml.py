"""The render's YAML writer (stackctl/render/yaml_out.py): LibYAML's emitter where it writes the
same bytes as PyYAML's pure-Python emitter, PyYAML's own double-quoted writer spliced in for the
strings LibYAML folds differently, the pure-Python emitter for the rest. The oracle is the
pure-Python emitter with the same options (what every render was written with before the fast
path)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stackctl.render import stack as render_mod
from stackctl.render import yaml_out

OPTIONS: dict[str, Any] = {"sort_keys": False, "default_flow_style": False, "width": 100}

needs_libyaml = pytest.mark.skipif(
    not yaml.__with_libyaml__, reason="PyYAML built without LibYAML: only one emitter to compare"
)


def pure_python(obj: Any) -> str:
    return yaml.dump(obj, Dumper=yaml.SafeDumper, **OPTIONS)


def libyaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=yaml.CSafeDumper, **OPTIONS)


# Characters that steer the emitters: indicators, quotes, spaces and breaks, escapes, non-ASCII.
ALPHABET = st.sampled_from([*"abcXYZ019 -:#'\"!&*?|>%@`,[]{}\n\t\r\\", "é", "\x85", "\u2028"])
words = st.text(ALPHABET, max_size=12)
long_text = st.lists(words, max_size=40).map(" ".join)  # long enough to fold at 100 columns
keys = st.one_of(words, st.integers(118, 132).map(lambda n: "k" * n), st.just(""))
scalars = st.one_of(
    words,
    long_text,
    st.sampled_from(["true", "no", "1.0", "0x1F", "~", "null", "2026-12-01", "1e3", "-", "---"]),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(keys, inner, min_size=1, max_size=4)
    ),
    max_leaves=30,
).map(lambda doc: {"kind": doc})


@given(documents)
@settings(max_examples=400, deadline=None)
def test_the_writer_writes_any_document_exactly_as_the_pure_python_emitter(
    doc: dict[str, Any],
) -> None:
    assert yaml_out.dump(doc) == pure_python(doc)


@needs_libyaml
@pytest.mark.parametrize(
    "doc",
    [
        {"k" * 123: "v"},  # PyYAML: `? key` (tag counted); LibYAML: a simple key
        {"": "v"},  # PyYAML: `? ''`; LibYAML: `'': v`
        {"data": {"jenkins.yaml": "jenkins:\n  systemMessage: 'x'\n" * 20}},  # double-quoted
    ],
    ids=["key-of-123", "empty-key", "indented-document"],
)
def test_where_the_emitters_differ_the_pure_python_bytes_are_written(doc: dict[str, Any]) -> None:
    assert libyaml(doc) != pure_python(doc)  # the case is real: LibYAML alone would change bytes
    assert yaml_out.dump(doc) == pure_python(doc)


@needs_libyaml
def test_libyaml_writes_the_prod_stack_and_writes_it_byte_identically() -> None:
    objects = render_mod.render_stack("prod").objects
    fast = [o for o in objects if yaml_out.same_in_both_emitters(o)]
    # LibYAML alone writes nearly every object (else the speed-up silently disappears)
    assert len(fast) >= 0.9 * len(objects), [o["kind"] for o in objects if o not in fast]
    for obj in fast:
        assert libyaml(obj) == pure_python(obj), render_mod.object_ref(obj)


@needs_libyaml
def test_the_prod_stack_s_double_quoted_expressions_are_spliced_into_libyaml_s_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    objects = render_mod.render_stack("prod").objects
    spliced = [o for o in objects if not yaml_out.same_in_both_emitters(o)]
    assert spliced, "the prod stack has no double-quoted string: this case tests nothing"
    expected = [pure_python(o) for o in spliced]
    dumpers: list[Any] = []
    real_dump = yaml.dump

    def spy(data: Any, *args: Any, Dumper: Any, **kwargs: Any) -> Any:
        dumpers.append(Dumper)
        return real_dump(data, *args, Dumper=Dumper, **kwargs)

    monkeypatch.setattr(yaml_out.yaml, "dump", spy)
    assert [yaml_out.dump(o) for o in spliced] == expected
    assert set(dumpers) == {yaml.CSafeDumper}  # no document fell back to the pure-Python emitter


# Documents the fast path takes: printable ASCII, line breaks not beside a space, keys < 123.
SAFE_ALPHABET = st.sampled_from(list("abcXYZ019 -:#'\"!&*?|>%@`,[]{}\\\n"))
safe_words = st.text(SAFE_ALPHABET, max_size=12).filter(lambda s: " \n" not in s and "\n " not in s)
safe_text = st.lists(safe_words, max_size=40).map(" ".join)
safe_documents = st.recursive(
    st.one_of(safe_words, safe_text, st.integers(), st.booleans(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.text(SAFE_ALPHABET.filter(lambda c: c != "\n"), min_size=1, max_size=122),
            inner,
            min_size=1,
            max_size=4,
        ),
    ),
    max_leaves=30,
).map(lambda doc: {"kind": doc})


@needs_libyaml
@given(safe_documents)
@settings(max_examples=400, deadline=None)
def test_libyaml_writes_what_the_fast_path_accepts_exactly_as_the_pure_python_emitter(
    doc: dict[str, Any],
) -> None:
    assume(yaml_out.same_in_both_emitters(doc))
    assert libyaml(doc) == pure_python(doc)


# Strings PyYAML double-quotes: a break beside a space (indented expressions), escapes, non-ASCII.
QUOTED_PIECES = st.sampled_from([*'ab(){}=~"\\', "sum by", "\n", "\n  ", "\t", "é", "\u2028"])
quoted_text = st.lists(
    st.lists(QUOTED_PIECES, min_size=1, max_size=8).map("".join), max_size=40
).map(" ".join)
plain_keys = st.text(st.sampled_from(list("abcxyz-_.")), min_size=1, max_size=40)
quoted_documents = st.recursive(
    st.one_of(quoted_text, safe_words),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(plain_keys, inner, min_size=1, max_size=4)
    ),
    max_leaves=20,
).map(lambda doc: {"kind": doc})


@needs_libyaml
@given(quoted_documents)
@settings(max_examples=300, deadline=None)
def test_double_quoted_strings_at_any_depth_and_column_are_written_as_pure_python_writes_them(
    doc: dict[str, Any],
) -> None:
    assert yaml_out.dump(doc) == pure_python(doc)


@needs_libyaml
@pytest.mark.parametrize("column", range(0, 96, 7))
def test_a_folded_double_quoted_value_is_written_as_pure_python_writes_it_at_every_column(
    column: int,
) -> None:
    expr = '(\n  sum by (job) (rate(x_total{job="a"}[5m]))\n  or\n  vector(0)\n) > 0.1' * 3
    doc = {"spec": {"groups": [{"rules": [{"k" * (column + 1): expr, "list": [expr]}]}]}}
    assert not yaml_out.same_in_both_emitters(doc)
    assert yaml_out.dump(doc) == pure_python(doc)
