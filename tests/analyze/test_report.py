"""Diff, footprint, rendering (table/Markdown/JSON/charts), the CLI, and bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ortprune.analyze import SizeReport, analyze, diff_reports
from ortprune.analyze.footprint import footprint
from ortprune.elf import ElfFile, is_system_library
from ortprune.errors import ElfError
from ortprune.report import size as render
from tests.analyze.libs import C_FUNCS, BuiltLib, build_c, build_with_dep


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ortprune.cli", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


# ---- diff ----------------------------------------------------------------------------------------------
def test_diff_reports_grew_shrank_appeared_vanished(toy_dir: Path, toy_plain: BuiltLib) -> None:
    funcs = dict(C_FUNCS)
    funcs["alpha_big"] = ("a.c", 4000)  # grew by 1000
    funcs["beta_mid"] = ("sub/b.c", 500)  # shrank by 1000
    del funcs["beta_tiny"]  # vanished
    funcs["gamma_new"] = ("sub/b.c", 64)  # appeared
    new = build_c(toy_dir, False, False, funcs, name="toy2")
    d = diff_reports(analyze(toy_plain.path, "symbol"), analyze(new.path, "symbol"))
    rows = {r.name: r for r in d.rows}
    assert rows["alpha_big"].status == "grew" and rows["alpha_big"].delta == 1000
    assert rows["beta_mid"].status == "shrank" and rows["beta_mid"].delta == -1000
    assert rows["beta_tiny"].status == "vanished" and rows["beta_tiny"].old == toy_plain.funcs["beta_tiny"][1]
    assert rows["gamma_new"].status == "appeared" and rows["gamma_new"].new == new.funcs["gamma_new"][1]
    assert rows["alpha_small"].status == "same"
    assert sum(r.delta for r in d.rows) == d.delta == new.path.stat().st_size - toy_plain.path.stat().st_size
    md = render.diff_markdown(d)
    assert "| `alpha_big` | " in md and "+1,000 | grew |" in md and "**TOTAL**" in md
    assert json.loads(json.dumps(d.to_dict()))["counts"]["appeared"] >= 1


def test_diff_needs_the_same_labels(toy_plain: BuiltLib) -> None:
    with pytest.raises(ValueError, match="cannot diff"):
        diff_reports(analyze(toy_plain.path, "symbol"), analyze(toy_plain.path, "section"))


# ---- footprint -----------------------------------------------------------------------------------------
def test_footprint_follows_dt_needed_through_runpath(tmp_path: Path) -> None:
    top, dep = build_with_dep(tmp_path)
    with ElfFile(top) as elf:
        assert "libdep.so" in elf.needed and elf.runpath == ["$ORIGIN"]
        fp = footprint(elf)
    shipped = {Path(e.path).name for e in fp.entries if not e.system and e.path}
    assert shipped == {"libtop.so", "libdep.so"}
    assert fp.total == top.stat().st_size + dep.stat().st_size
    assert any(e.needed.startswith("libc.so") and e.system for e in fp.entries)
    dep.unlink()
    with ElfFile(top) as elf:
        assert footprint(elf).missing == ["libdep.so"]


def test_system_libraries() -> None:
    for name in ("libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2", "libdl.so.2"):
        assert is_system_library(name), name
    for name in ("libonnxruntime.so.1", "libgomp.so.1", "libcudart.so.12"):
        assert not is_system_library(name), name


# ---- rendering -----------------------------------------------------------------------------------------
def test_report_json_round_trip_and_markdown(toy_plain: BuiltLib, tmp_path: Path) -> None:
    report = analyze(toy_plain.path, "symbol")
    path = report.write_json(tmp_path / "r.json")
    back = SizeReport.from_dict(json.loads(path.read_text()))
    assert back.total == report.total == report.file_size
    assert back.by_name() == report.by_name()
    assert back.footprint is not None and back.footprint.total == report.footprint.total  # type: ignore[union-attr]
    md = render.labels_markdown(report, top=3)
    assert "| `alpha_table` | symbol | 5,000 |" in md
    assert "other labels" in md and f"**{report.file_size:,}**" in md


def test_variant_table_matches_the_seed_format() -> None:
    full = SizeReport("/b/full/MinSizeRel/libonnxruntime.so", 19_328_992, "section", [], [], "none", False)
    noc = SizeReport("/b/nocontrib/MinSizeRel/libonnxruntime.so", 16_251_688, "section", [], [], "none", False)
    red = SizeReport("/b/reduced/MinSizeRel/libonnxruntime.so", 10_475_624, "section", [], [], "none", False)
    rows = render.variant_rows([full, noc, red], full)
    assert [r.name for r in rows] == ["full", "nocontrib", "reduced"]
    md = render.variants_markdown(rows)
    # The seed's own numbers, rendered the seed's way.
    assert "| full | 19,328,992 | 18.43 | baseline |" in md
    assert "| nocontrib | 16,251,688 | 15.50 | -15.9% |" in md
    assert "| reduced | 10,475,624 | 9.99 | -45.8% |" in md


def test_charts_are_png_with_json_data(toy_plain: BuiltLib, tmp_path: Path) -> None:
    report = analyze(toy_plain.path, "symbol")
    png, js = render.write_label_chart(report, tmp_path, top=5)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(js.read_text())
    assert [x["size"] for x in data["labels"]] == [r.size for r in report.sorted_labels()[:5]]
    rows = render.variant_rows([report, report], report)
    png2, js2 = render.write_variant_chart(rows, tmp_path)
    assert png2.read_bytes()[:4] == b"\x89PNG" and len(json.loads(js2.read_text())) == 2


# ---- CLI -----------------------------------------------------------------------------------------------
def test_cli_size_json_markdown_table(toy_plain: BuiltLib, toy_debug: BuiltLib, tmp_path: Path) -> None:
    r = _cli("size", str(toy_plain.path), str(toy_debug.path), "--format", "json", "--by", "symbol")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [v["size"] for v in data["variants"]] == [toy_plain.path.stat().st_size, toy_debug.path.stat().st_size]
    assert data["variants"][0]["change_percent"] == 0 and data["variants"][1]["change_percent"] > 0
    assert all(rep["total"] == rep["file_size"] for rep in data["reports"])
    out = tmp_path / "sizes.md"
    r = _cli("size", str(toy_plain.path), "--baseline", str(toy_debug.path), "-f", "markdown", "-o", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert text.startswith("| Build | Size (bytes) | Size (MiB) | vs Full |")
    assert "| baseline |" in text.splitlines()[2] and "%" in text.splitlines()[3]
    r = _cli("size", str(toy_plain.path), str(toy_debug.path), "--name", "plain", "--name", "debug", "-f", "markdown")
    assert r.returncode == 0 and "| plain | " in r.stdout and "| debug | " in r.stdout
    r = _cli("size", str(toy_plain.path), "--name", "a", "--name", "b")
    assert r.returncode == 1 and "--name given 2 times" in r.stderr
    r = _cli("size", str(toy_plain.path), "--top", "5", "--by", "symbol")
    assert r.returncode == 0 and "TOTAL" in r.stdout and f"{toy_plain.path.stat().st_size:,}" in r.stdout
    assert "[padding]" in r.stdout and "alpha_table" in r.stdout  # bracketed labels are text, not markup


def test_cli_size_diff(toy_plain: BuiltLib, toy_debug: BuiltLib) -> None:
    r = _cli("size", "diff", str(toy_plain.path), str(toy_debug.path), "-f", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    status = {row["name"]: row["status"] for row in data["rows"]}
    assert status[".debug_info"] == "appeared"
    assert data["delta"] == toy_debug.path.stat().st_size - toy_plain.path.stat().st_size
    r = _cli("size", "diff", str(toy_plain.path))
    assert r.returncode != 0 and "Missing" in r.stderr  # a usage error of the diff sub-command


def test_cli_charts(toy_plain: BuiltLib, tmp_path: Path) -> None:
    r = _cli("size", str(toy_plain.path), str(toy_plain.path), "--chart", str(tmp_path / "charts"), "-f", "json")
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert "variants.png" in names and f"{toy_plain.path.name}-by-section.png" in names


# ---- bad input -----------------------------------------------------------------------------------------
def _bad_inputs(tmp_path: Path, good: Path) -> dict[str, Path]:
    text = tmp_path / "notes.txt"
    text.write_text("not an ELF file\n")
    empty = tmp_path / "empty.so"
    empty.write_bytes(b"")
    head = tmp_path / "head.so"
    head.write_bytes(good.read_bytes()[:40])
    cut = tmp_path / "cut.so"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return {"text": text, "empty": empty, "head": head, "cut": cut, "missing": tmp_path / "nope.so"}


@pytest.mark.parametrize("case", ["text", "empty", "head", "cut", "missing"])
def test_bad_input_one_clear_error(case: str, toy_plain: BuiltLib, tmp_path: Path) -> None:
    bad = _bad_inputs(tmp_path, toy_plain.path)[case]
    with pytest.raises(ElfError) as e:
        analyze(bad, "symbol")
    assert str(bad) in str(e.value)
    out = tmp_path / "out.md"
    r = _cli("size", str(toy_plain.path), str(bad), "-f", "markdown", "-o", str(out))
    assert r.returncode == 1
    assert r.stdout == "" and not out.exists()
    assert "Traceback" not in r.stderr and str(bad.name) in r.stderr
    assert len([line for line in r.stderr.splitlines() if line.strip()]) <= 2  # one message (maybe wrapped)


def test_directory_is_not_an_elf_file(tmp_path: Path) -> None:
    with pytest.raises(ElfError, match="directory"):
        analyze(tmp_path)


@pytest.mark.skipif(shutil.which("c++filt") is None, reason="binutils missing")
def test_demangle_backends_agree(miniort: Path) -> None:
    from ortprune.analyze.demangle import demangle, short_name

    with ElfFile(miniort) as elf:
        names = [s.name for s in elf.symbols("symtab") if s.name.startswith("_Z")]
    assert len(names) >= 8
    assert demangle(names, "ctypes") == demangle(names, "cxxfilt")
    assert demangle(["plain_c", "_Znot_valid@@"], "ctypes") == ["plain_c", "_Znot_valid@@"]
    assert short_name("onnxruntime::contrib::Attention<float>::Compute(int) const") == (
        "onnxruntime::contrib::Attention::Compute"
    )
    assert short_name("bool std::operator< <char>(std::string const&, char const*)") == "bool std::operator<"


def test_find_builds_reads_manifests(tmp_path: Path, toy_plain: BuiltLib) -> None:
    from ortprune.analyze.builds import find_builds

    def make(dirname: str, manifest: dict[str, object] | None, config: str | None, tag: bytes = b"") -> None:
        lib = tmp_path / dirname / "MinSizeRel" / "libonnxruntime.so.1.21.0"
        lib.parent.mkdir(parents=True)
        lib.write_bytes(toy_plain.path.read_bytes() + tag)
        if manifest is not None:
            (tmp_path / dirname / "manifest.json").write_text(json.dumps(manifest))
        if config is not None:
            (tmp_path / dirname / "ops.config").write_text(config)

    make("1.21.0-reduced-abc", {"variant": "reduced", "extra_flags": []}, "ai.onnx;13;Add\n", b"r")
    make("full", None, None)
    make("1.21.0-full-abc", {"variant": "full", "extra_flags": []}, None)  # the same library, with a manifest
    make("1.21.0-no-contrib-def", {"variant": "no-contrib", "extra_flags": ["--enable_lto"]}, None, b"n")
    (tmp_path / "1.21.0-broken" / "MinSizeRel").mkdir(parents=True)  # no library: not a build
    builds = find_builds("1.21.0", tmp_path)
    assert [b.name for b in builds] == ["full", "no-contrib+--enable_lto", "reduced"]
    assert builds[2].config is not None and builds[0].config is None
    assert builds[0].library.parents[1].name == "1.21.0-full-abc"
    assert find_builds("1.21.0", tmp_path / "nope") == []
