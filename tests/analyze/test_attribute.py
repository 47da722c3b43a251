"""Attribution against known truth (gcc-built libraries), nm, readelf and the onnxruntime wheel."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from ortprune.analyze import BY, analyze
from ortprune.results.size import KINDS
from tests.analyze.libs import BuiltLib, build_c, naked_trailer


def _readelf_sections(path: Path) -> dict[str, tuple[str, int]]:
    """name → (type, size) from ``readelf -SW``."""
    text = subprocess.run(["readelf", "-SW", str(path)], capture_output=True, text=True, check=True).stdout
    out = {}
    for m in re.finditer(r"\[\s*([1-9]\d*)\]\s+(\S+)\s+(\S+)\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)", text):
        out[m.group(2)] = (m.group(3), int(m.group(4), 16))
    return out


def _nm_sizes(path: Path, demangle: bool = False) -> dict[str, list[int]]:
    """name → sizes from ``nm -S --size-sort --defined-only`` (several entries for same-named locals)."""
    cmd = ["nm", "-S", "--size-sort", "--defined-only", *(["-C"] if demangle else []), str(path)]
    out: dict[str, list[int]] = {}
    for line in subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines():
        _addr, size, kind, name = line.split(" ", 3)
        if kind in "bB":  # .bss has no file bytes
            continue
        out.setdefault(name, []).append(int(size, 16))
    return out


@pytest.mark.parametrize("by", BY)
def test_labels_sum_to_file_size(toy: BuiltLib, by: str) -> None:
    report = analyze(toy.path, by)
    assert report.file_size == toy.path.stat().st_size
    assert report.total == report.file_size
    assert all(label.size > 0 and label.kind in KINDS for label in report.labels)
    assert len({label.name for label in report.labels}) == len(report.labels)


def test_every_function_and_table_has_its_true_size(toy: BuiltLib) -> None:
    labels = analyze(toy.path, "symbol").by_name()
    # A stripped library still names its exported functions and tables through .dynsym.
    for name, (_, size) in {**toy.funcs, **toy.tables}.items():
        assert labels[name].size == size, name
        assert labels[name].kind == "symbol"


def test_symbol_sizes_agree_with_nm(toy_plain: BuiltLib, miniort: Path) -> None:
    for path, demangle in ((toy_plain.path, False), (miniort, True)):
        labels = analyze(path, "symbol").by_name()
        nm = _nm_sizes(path, demangle)
        checked = 0
        for name, sizes in nm.items():
            if len(sizes) == 1 and name in labels:
                assert labels[name].size == sizes[0], name
                checked += 1
        assert checked >= (len(toy_plain.funcs) if path == toy_plain.path else 10)


def test_section_sizes_agree_with_readelf(toy: BuiltLib) -> None:
    labels = analyze(toy.path, "section").by_name()
    sections = _readelf_sections(toy.path)
    assert sections
    for name, (typ, size) in sections.items():
        if typ in ("NULL", "NOBITS"):
            assert name not in labels
        else:
            assert labels[name].size == size, name


def test_per_file_and_per_dir_sizes_from_dwarf(toy_debug: BuiltLib) -> None:
    by_file = analyze(toy_debug.path, "file").by_name()
    expected: dict[str, int] = {}
    for file, size in toy_debug.funcs.values():
        expected[file] = expected.get(file, 0) + size
    assert {n: label.size for n, label in by_file.items() if label.kind == "file"} == expected
    by_dir = analyze(toy_debug.path, "dir").by_name()
    assert by_dir["./"].size == expected["a.c"]
    assert by_dir["sub/"].size == expected["sub/b.c"]


def test_compile_units_without_aranges_use_die_ranges(toy_dir: Path) -> None:
    """clang writes no .debug_aranges by default; -ffunction-sections gives CUs DW_AT_ranges lists."""
    lib = build_c(toy_dir, True, False, name="toy-nosec", flags=["-ffunction-sections"])
    subprocess.run(["objcopy", "--remove-section=.debug_aranges", str(lib.path)], check=True)
    assert (
        "debug_aranges" not in subprocess.run(["readelf", "-SW", str(lib.path)], capture_output=True, text=True).stdout
    )
    expected: dict[str, int] = {}
    for file, size in lib.funcs.values():
        expected[file] = expected.get(file, 0) + size
    labels = analyze(lib.path, "file").labels
    assert {label.name: label.size for label in labels if label.kind == "file"} == expected


def test_missing_debug_info_and_symbols_are_said(toy_dir: Path, toy: BuiltLib) -> None:
    report = analyze(toy.path, "file")
    if toy.debug and not toy.stripped:
        assert report.debug_info
    else:
        assert not report.debug_info
        assert any("-g" in n for n in report.notes)
        assert all(label.kind in ("section", "header", "padding") for label in report.labels)
    sym = analyze(toy.path, "symbol")
    assert sym.symbol_table == ("dynsym" if toy.stripped else "symtab")
    assert any("stripped" in n for n in sym.notes) == toy.stripped


def test_naked_trailer_is_what_gcc_writes() -> None:
    assert naked_trailer() in (0, 1, 2)


def test_short_names_group_template_instances(miniort: Path) -> None:
    labels = analyze(miniort, "symbol", short=True).by_name()
    assert "onnxruntime::BuildKernelCreateInfo" in labels
    assert labels["onnxruntime::BuildKernelCreateInfo"].count >= 3


def test_wheel_library_sections_exact_and_fast(wheel_lib: Path) -> None:
    for by in ("section", "symbol", "op"):
        start = time.perf_counter()
        report = analyze(wheel_lib, by)
        elapsed = time.perf_counter() - start
        assert report.total == report.file_size == wheel_lib.stat().st_size
        assert elapsed < 10, (by, elapsed)
    labels = analyze(wheel_lib, "section").by_name()
    for name, (typ, size) in _readelf_sections(wheel_lib).items():
        if typ not in ("NULL", "NOBITS"):
            assert labels[name].size == size, name
    assert report.symbol_table == "dynsym" and any("stripped" in n for n in report.notes)
