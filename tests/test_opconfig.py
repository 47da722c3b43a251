"""OpConfig against ORT's own parser (onnxruntime.tools.reduced_build_config_parser) and by property."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnxruntime.tools.reduced_build_config_parser import parse_config

from ortprune.errors import ConfigError
from ortprune.opconfig import OpConfig, OpId, OpTypes

SEED = Path(__file__).parents[1] / "src" / "ortprune" / "data" / "seed.config"

TYPED = """\
# generated from ORT format model/s
ai.onnx;12;Add,Cast{"inputs": {"0": ["float", "int32_t"]}, "outputs": {"0": ["float", "int64_t"]}},Concat
ai.onnx;13;Gather{"inputs": {"0": ["float"], "1": ["int64_t"]}}
ai.onnx;11;OneHot{"custom": [["float", "int64_t", "int64_t"]]}
com.microsoft;1;FusedMatMul
"""


def ort_parse(tmp_path: Path, text: str, types: bool = False) -> tuple[dict, object]:
    p = tmp_path / "ort.config"
    p.write_text(text)
    return parse_config(str(p), types)


def test_seed_config_matches_ort_parser(tmp_path: Path) -> None:
    ours = OpConfig.load(SEED)
    theirs, _ = ort_parse(tmp_path, SEED.read_text())
    assert ours.to_ort_required_ops() == theirs
    assert len(ours) == 13


def test_typed_config_round_trip_and_ort_agrees(tmp_path: Path) -> None:
    ours = OpConfig.parse(TYPED)
    theirs, type_filter = ort_parse(tmp_path, TYPED, types=True)
    assert ours.to_ort_required_ops() == theirs
    assert OpId("ai.onnx", 12, "Cast") in ours and OpId("ai.onnx", 13, "Gather") in ours
    assert ours.types[("ai.onnx", "Cast")].outputs == {0: {"float", "int64_t"}}
    # ORT's filter, fed our formatted text, makes the same typed-kernel decisions
    theirs2, filter2 = ort_parse(tmp_path, ours.format(), types=True)
    assert theirs2 == theirs
    for op, t in [("Cast", "double"), ("Cast", "float"), ("Gather", "float"), ("Gather", "int8_t")]:
        assert filter2.is_typed_registration_needed("ai.onnx", op, t) == type_filter.is_typed_registration_needed(
            "ai.onnx", op, t
        )
    assert OpConfig.parse(ours.format()).format() == ours.format()


def test_type_json_is_what_ort_writes() -> None:
    t = OpTypes(inputs={1: {"int64_t"}, 0: {"int32_t", "float"}})
    assert t.to_json() == json.dumps({"inputs": {"0": ["float", "int32_t"], "1": ["int64_t"]}})


def test_directives(tmp_path: Path) -> None:
    text = "!globally_allowed_types;float,int64_t\n!no_ops_specified_means_all_ops_are_required\n"
    c = OpConfig.parse(text)
    assert c.globally_allowed_types == {"float", "int64_t"} and c.no_ops_means_all
    assert OpConfig.parse(c.format()).globally_allowed_types == c.globally_allowed_types
    theirs, _ = ort_parse(tmp_path, c.format())
    assert theirs is None  # ORT: "no ops means all ops"


def test_multi_opset_line_keeps_opsets_apart(tmp_path: Path) -> None:
    """`d;12,13;A` then `d;13;B`: B is for opset 13 only. ORT's parser shares one set between the opsets of a
    line, so it also lists B under 12 -- harmless for a build (it only keeps more), but not the meaning."""
    text = "ai.onnx;12,13;Add\nai.onnx;13;Gather\n"
    ours = OpConfig.parse(text)
    assert ours.ops["ai.onnx"] == {12: {"Add"}, 13: {"Add", "Gather"}}
    theirs, _ = ort_parse(tmp_path, text)
    assert theirs["ai.onnx"][12] == {"Add", "Gather"}
    # written back one line per opset, ORT reads exactly our meaning
    assert ort_parse(tmp_path, ours.format())[0] == ours.to_ort_required_ops()


def test_merge_unions_types_where_ort_would_replace() -> None:
    """ORT #16742: a later entry for the same op replaced the earlier types; merge must keep both."""
    a = OpConfig.parse('ai.onnx;13;ReduceProd{"inputs": {"0": ["int64_t"]}}\n')
    b = OpConfig.parse('ai.onnx;18;ReduceProd{"inputs": {"0": ["float"]}}\n')
    m = OpConfig.merge(a, b)
    assert m.types[("ai.onnx", "ReduceProd")].inputs[0] == {"float", "int64_t"}
    assert {i.opset for i in m} == {13, 18}


def test_diff() -> None:
    a = OpConfig.parse("ai.onnx;17;Add,MatMul\n")
    b = OpConfig.parse("ai.onnx;17;Add\ncom.microsoft;1;FusedMatMul\n")
    d = a.diff(b)
    assert d.added == [OpId("com.microsoft", 1, "FusedMatMul")]
    assert d.removed == [OpId("ai.onnx", 17, "MatMul")]
    assert not a.diff(a.copy())


def test_covers_uses_kernel_version_ranges() -> None:
    """The seed's config lists ai.onnx opset 11: it does not keep Shape-15 or Cast-13 kernels (offline-build note)."""
    seed = OpConfig.load(SEED)
    need = OpConfig.parse("ai.onnx;17;Shape,Cast,Gather\ncom.microsoft;1;Attention\n")
    assert seed.covers(need) == [
        OpId("ai.onnx", 17, "Cast"),
        OpId("ai.onnx", 17, "Gather"),
        OpId("ai.onnx", 17, "Shape"),
    ]
    # opset 14 and 17 resolve to the same Add schema (14): covered
    assert OpConfig.parse("ai.onnx;14;Add\n").covers(OpConfig.parse("ai.onnx;17;Add\n")) == []
    assert OpConfig.parse("ai.onnx;13;Add\n").covers(OpConfig.parse("ai.onnx;17;Add\n")) != []


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("ai.onnx;17\n", "3 fields"),
        ("ai.onnx;seventeen;Add\n", "opset must be"),
        ("ai.onx;17;Add\n", "unknown domain 'ai.onx'"),
        ('ai.onnx;17;Add{"inputs": {"0": ["float"]}\n', "unbalanced"),
        ("ai.onnx;17;Add,,Mul\n", "empty operator name"),
        ("ai.onnx;17;Add Mul\n", "invalid operator name"),
        ("!globally_allowed_types;float\n!globally_allowed_types;float\n", "already specified"),
        ("!globally_allowed_types;floaty\n", "unknown type name"),
        ('!globally_allowed_types;float\nai.onnx;17;Add{"inputs": {"0": ["float"]}}\n', "cannot be combined"),
    ],
)
def test_syntax_errors_name_file_and_line(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "bad.config"
    p.write_text("# fine\n" + text)
    with pytest.raises(ConfigError) as e:
        OpConfig.load(p)
    assert needle in str(e.value)
    assert str(p) in str(e.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        OpConfig.load(tmp_path / "nope.config")


# ---- property tests -------------------------------------------------------------------------------
DOMAINS = st.sampled_from(["ai.onnx", "ai.onnx.ml", "com.microsoft", "com.microsoft.nchwc"])
OPS = st.from_regex(r"[A-Z][A-Za-z0-9_]{0,12}", fullmatch=True)
TYPES = st.sets(
    st.sampled_from(["float", "double", "int64_t", "int32_t", "uint8_t", "bool", "MLFloat16"]), min_size=1, max_size=3
)
OPTYPES = st.builds(
    OpTypes,
    inputs=st.dictionaries(st.integers(0, 3), TYPES, max_size=2),
    outputs=st.dictionaries(st.integers(0, 1), TYPES, max_size=1),
)
ENTRIES = st.lists(st.tuples(DOMAINS, st.integers(1, 23), OPS, st.none() | OPTYPES), min_size=1, max_size=25)


def build(entries: list) -> OpConfig:
    c = OpConfig()
    for domain, opset, op, types in entries:
        c.add(domain, opset, op, types)
    return c


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=ENTRIES)
def test_property_format_parse_round_trip_agrees_with_ort(tmp_path: Path, entries: list) -> None:
    c = build(entries)
    text = c.format()
    again = OpConfig.parse(text)
    assert again.format() == text
    assert set(again) == set(c)
    theirs, _ = ort_parse(tmp_path, text, types=True)
    assert theirs == c.to_ort_required_ops()


@settings(max_examples=100, deadline=None)
@given(a=ENTRIES, b=ENTRIES)
def test_property_merge_is_union_and_diff_inverts(a: list, b: list) -> None:
    ca, cb = build(a), build(b)
    m = OpConfig.merge(ca, cb)
    assert set(m) == set(ca) | set(cb)
    assert OpConfig.merge(cb, ca).format() == m.format()
    d = ca.diff(cb)
    assert set(d.added) == set(cb) - set(ca) and set(d.removed) == set(ca) - set(cb)
    assert ca.covers(m) == [i for i in m if i not in ca and ca.covers(OpConfig.from_ids([i]))]
