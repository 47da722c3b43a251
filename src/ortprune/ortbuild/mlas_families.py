"""``mlas-families``: MLAS's platform table keeps only the kernel families some linked MLAS routine reads.

``MLAS_PLATFORM::MLAS_PLATFORM()`` (``platform.cpp``) stores a kernel or dispatch table in every field of the
platform table (QGEMM, quantized and NCHWc convolution, n-bit GEMM, DGEMM, ...), whatever the library calls:
the constructor is always linked, so every kernel it names is too. A field is only ever read by MLAS's own
sources (``mlasi.h``, which declares the table, is included by no ORT file outside MLAS), so a field that no
*linked* MLAS object reads is never read at run time: its assignments can store ``nullptr`` and its kernels go.

Which MLAS objects are linked is the link's own answer, taken at archive-member granularity (an object ld
takes whole, before any garbage collection: a superset of the code that can run), without the references of
``platform.cpp``'s constructor (the very ones the lever removes). From a finished link:

1. ``needed``: the MLAS members some pulled non-MLAS member (ORT's kernels, framework) refers to, closed over
   the members' own references; ``platform.cpp`` is always needed but its constructor's references are not
   followed.
2. ``kept``: the fields a needed member's source reads (a word match, comments and the table's declaration
   left out; a header that reads a field counts for every MLAS source including it; ``platform.cpp``'s own
   functions count one by one, by whether a needed member refers to them). A field read by ``mlasi.h`` itself
   is always kept.
3. The kernels a kept field is assigned run too (through the table): their members join ``needed``; repeat
   until nothing changes.

Every other field whose assignments store an MLAS kernel or dispatch table is dropped. The rule errs only
towards keeping: a member ld pulls but whose code is dead still keeps what it reads.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ortprune.errors import BuildError
from ortprune.ortbuild.mlas import PLATFORM_CPP, _close

FAMILIES_LEVER = "mlas-families"
#: Part of the key of a build with the lever: bumped when what it keeps changes (2: the contrib registration's
#: NCHWc probe goes when no NCHWc op is kept, ``prune.drop_nchwc_probe``), so an older build is not reused.
FAMILIES_VERSION = 2
MLAS_LIB = "onnxruntime/core/mlas/lib"
MLAS_ARCHIVE = "libonnxruntime_mlas.a"

_CTOR = re.compile(r"\bMLAS_PLATFORM::MLAS_PLATFORM\s*\(")
#: ``this->Field = MlasKernel;``, ``this->Field[Kind] = &MlasDispatch;``, ``= MlasKernel<uint8_t, int8_t>;``
_ASSIGN = re.compile(r"this->(\w+)(\[[^\]]*\])?\s*=\s*([^;]*);")
_MLAS_SYMBOL = re.compile(r"&?\s*(Mlas\w+)(?:<[^;]*>)?\s*$")
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
_TOP_FUNCTION = re.compile(r"^(\w+)\s*\(", re.M)  # MLAS style: a definition's name starts its line


def _blank(s: str) -> str:
    return re.sub(r"[^\n]", " ", s)


def _uncomment(text: str) -> str:
    """``text`` with comments blanked to spaces (offsets kept)."""
    return _COMMENT.sub(lambda m: _blank(m[0]), text)


def _first_branches(text: str) -> str:
    """``text`` with the ``#else``/``#elif`` branches of every preprocessor conditional blanked (offsets kept):
    ``#ifndef X if (a) { #else if (false) { #endif`` has balanced braces only one branch at a time."""
    out, stack = [], []  # stack: is the current branch a later (blanked) one
    for line in text.splitlines(keepends=True):
        d = re.match(r"\s*#\s*(if|ifdef|ifndef|elif|else|endif)\b", line)
        word = d[1] if d else None
        if word in ("if", "ifdef", "ifndef"):
            stack.append(False)
        elif word in ("elif", "else") and stack:
            stack[-1] = True
        elif word == "endif" and stack:
            stack.pop()
        out.append(_blank(line) if any(stack) and word is None else line)
    return "".join(out)


@dataclass(frozen=True)
class Assignment:
    """One statement of the constructor that stores an MLAS symbol in a table field."""

    field: str
    index: str  # "[MlasMaximumPooling]" or ""
    symbol: str  # the kernel or dispatch table assigned
    start: int
    end: int  # after the ';'


def constructor_span(text: str, path: str | Path = PLATFORM_CPP) -> tuple[int, int]:
    """The body of ``MLAS_PLATFORM::MLAS_PLATFORM()`` (from its ``{`` to after its ``}``); BuildError when
    there is not exactly one."""
    clean = _first_branches(_uncomment(text))
    found = list(_CTOR.finditer(clean))
    if len(found) != 1:
        raise BuildError(
            f"MLAS's platform.cpp has {len(found)} MLAS_PLATFORM constructors (expected 1): "
            f"{FAMILIES_LEVER} does not fit this ORT source",
            path,
        )
    try:
        close_paren = _close(clean, found[0].end() - 1, "(", ")")
        brace = clean.find("{", close_paren)
        if brace < 0:
            raise ValueError("no body")
        return brace, _close(clean, brace, "{", "}")
    except ValueError:
        raise BuildError("MLAS_PLATFORM's constructor has unbalanced brackets or no body", path) from None


def table_assignments(text: str, path: str | Path = PLATFORM_CPP) -> list[Assignment]:
    """The constructor's statements that store an MLAS kernel or dispatch table in a field (``nullptr``,
    numbers and other values are not kernels and are left alone)."""
    start, end = constructor_span(text, path)
    clean = _uncomment(text)
    found = []
    for m in _ASSIGN.finditer(clean, start, end):
        sym = _MLAS_SYMBOL.match(m[3].strip())
        if sym:
            found.append(Assignment(m[1], m[2] or "", sym[1], m.start(), m.end()))
    if not found:
        raise BuildError(f"MLAS_PLATFORM's constructor assigns no kernel: {FAMILIES_LEVER} does not fit", path)
    return found


@dataclass
class FamilyCut:
    """What ``mlas-families`` did to platform.cpp."""

    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)  # kernels and dispatch tables no longer referenced
    needed: list[str] = field(default_factory=list)  # the MLAS members the decision counted as linked


def drop_fields(text: str, drop: Iterable[str], path: str | Path = PLATFORM_CPP) -> tuple[str, FamilyCut]:
    """platform.cpp's text whose constructor stores ``nullptr`` instead of a kernel in every field of ``drop``;
    BuildError for a field the constructor never assigns a kernel (another MLAS version, or a typo)."""
    drop = set(drop)
    assigns = table_assignments(text, path)
    assigned = {a.field for a in assigns}
    unknown = sorted(drop - assigned)
    if unknown:
        raise BuildError(f"MLAS_PLATFORM's constructor assigns no kernel to {', '.join(unknown)}", path)
    cut = FamilyCut(kept=sorted(assigned - drop), dropped=sorted(drop))
    out, pos, removed = [], 0, set()
    for a in assigns:
        if a.field not in drop:
            continue
        out += [text[pos : a.start], f"this->{a.field}{a.index} = nullptr;  /* ortprune: {FAMILIES_LEVER} */"]
        pos = a.end
        removed.add(a.symbol)
    out.append(text[pos:])
    new_text = "".join(out)
    still = {a.symbol for a in assigns if a.field not in drop} | set(re.findall(r"\b(Mlas\w+)\b", _uncomment(new_text)))
    cut.symbols = sorted(removed - still)
    return new_text, cut


# ---- which fields the linked MLAS objects read -------------------------------------------------------------
def _platform_struct_removed(text: str) -> str:
    """mlasi.h's text without the body of ``struct MLAS_PLATFORM`` (declaring a field is not reading it)."""
    m = re.search(r"\bstruct\s+MLAS_PLATFORM\s*\{", text)
    if not m:
        return text
    end = _close(text, m.end() - 1, "{", "}")
    return text[: m.start()] + text[end:]


@dataclass
class Readers:
    """Who reads each table field, by MLAS source (relative to the MLAS lib dir)."""

    by_source: dict[str, set[str]]  # compiled source -> fields it (or a header it includes) reads
    by_platform_function: dict[str, set[str]]  # a function of platform.cpp -> the fields it reads
    always: set[str]  # fields mlasi.h (included everywhere) or platform.cpp's other code reads


def field_readers(lib: Path, fields: Iterable[str]) -> Readers:
    """Which MLAS sources under ``lib`` read which of ``fields`` (word match on comment-free text)."""
    fields = set(fields)
    texts: dict[str, str] = {}
    for f in sorted(lib.rglob("*")):
        if f.suffix in (".cpp", ".c", ".h", ".inc") and f.is_file():
            texts[f.relative_to(lib).as_posix()] = _uncomment(f.read_text(errors="replace"))
    if "mlasi.h" not in texts or PLATFORM_CPP.rsplit("/", 1)[1] not in texts:
        raise BuildError("not MLAS's lib directory (no mlasi.h or platform.cpp)", lib)
    word = re.compile(r"\b(" + "|".join(sorted(fields)) + r")\b") if fields else None

    def reads(text: str) -> set[str]:
        return set(word.findall(text)) if word else set()

    always = reads(_platform_struct_removed(texts["mlasi.h"]))
    direct = {name: reads(t) for name, t in texts.items() if name not in ("mlasi.h", "platform.cpp")}
    # headers count for every source that includes them, directly or through another header
    includes = {name: {inc.rsplit("/", 1)[-1] for inc in _INCLUDE.findall(t)} for name, t in texts.items()}
    by_base: dict[str, list[str]] = {}
    for name in texts:
        by_base.setdefault(name.rsplit("/", 1)[-1], []).append(name)
    by_source: dict[str, set[str]] = {}
    for name in texts:
        if not name.endswith((".cpp", ".c")) or name == "platform.cpp":
            continue
        seen, todo, got = {name}, [name], set(direct[name])
        while todo:
            for base in includes.get(todo.pop(), ()):
                for h in by_base.get(base, ()):
                    if h not in seen and h != "mlasi.h":
                        seen.add(h)
                        todo.append(h)
                        got |= direct.get(h, set())
        by_source[name] = got
    # platform.cpp: the constructor writes, its other functions read (each counted when something calls it)
    plat = texts["platform.cpp"]
    c_start, c_end = constructor_span(plat, lib / "platform.cpp")
    rest = plat[:c_start] + plat[c_end:]
    braces = _first_branches(rest)  # brackets matched one preprocessor branch at a time; reads in all
    by_function: dict[str, set[str]] = {}
    outside, pos = [], 0
    for m in _TOP_FUNCTION.finditer(braces):
        if m.start() < pos:  # inside the function just read
            continue
        try:
            close = _close(braces, m.end() - 1, "(", ")")
            body = re.match(r"\s*\{", braces[close:])
            if body is None:
                continue
            end = _close(braces, close + body.end() - 1, "{", "}")
        except ValueError:
            raise BuildError(f"unbalanced brackets after {m[1]} in platform.cpp", lib / "platform.cpp") from None
        got = reads(rest[m.start() : end])
        if got:
            by_function.setdefault(m[1], set()).update(got)
        outside.append(rest[pos : m.start()])
        pos = end
    outside.append(rest[pos:])
    always |= reads("".join(outside))
    return Readers(by_source, by_function, always)


# ---- the link's side: members pulled, and the symbols each defines and refers to ------------------------------
@dataclass
class Member:
    archive: str  # file name, e.g. libonnxruntime_mlas.a
    name: str  # member name, e.g. sgemm.cpp.o
    strong: set[str] = field(default_factory=set)  # demangled names defined strongly
    weak: set[str] = field(default_factory=set)
    undefined: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return f"{self.archive}({self.name})"


#: llvm-nm puts a space after the member's colon, GNU nm (gcc-nm) does not: ``lib.a:m.o:0000000000000000 T f``
_NM_LINE = re.compile(r"^(?P<file>.+?):\s*(?:(?P<addr>[0-9a-f]{8,}|-{8,})\s+)?(?P<type>[A-Za-z?]) (?P<name>.+)$")


def parse_nm(text: str) -> dict[str, Member]:
    """``llvm-nm -A -C`` output of archives (``lib.a:member.o: addr T name``) as members by ``lib.a(member)``."""
    members: dict[str, Member] = {}
    for line in text.splitlines():
        m = _NM_LINE.match(line)
        if not m:
            continue
        path, _, member = m["file"].rpartition(":")
        if not path:
            path, member = m["file"], ""
        archive = Path(path).name
        mem = members.setdefault(f"{archive}({member})", Member(archive, member))
        t, name = m["type"], m["name"]
        if t in "Uw":
            mem.undefined.add(name)
        elif t in "TDBRC":
            mem.strong.add(name)
        elif t in "WV":
            mem.weak.add(name)
        # lowercase: local definitions, which resolve no other object's reference
    return members


def read_archives(archives: Iterable[Path], nm: str = "llvm-nm") -> dict[str, Member]:
    """Every member of ``archives`` with its defined and undefined symbols (bitcode members too: llvm-nm)."""
    cmd = [nm, "-A", "-C", *map(str, archives)]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise BuildError(f"cannot run {nm}: {e}") from None
    if run.returncode != 0:  # a partial listing would hide a member's reads
        raise BuildError(f"{shlex.join(cmd[:3])} ... failed: {run.stderr.strip()[:300]}")
    return parse_nm(run.stdout)


_WHY = re.compile(r"^(?P<ref>[^\t]*)\t(?P<extracted>[^\t]+)\t(?P<sym>.*)$")


def pulled_from_why_extract(text: str) -> set[str]:
    """The archive members lld took (``--why-extract=`` output: ``reference<TAB>extracted<TAB>symbol``), as
    ``lib.a(member)`` by file name."""
    lines = text.splitlines()
    if not lines or lines[0].split("\t") != ["reference", "extracted", "symbol"]:
        raise BuildError("not lld --why-extract output (no 'reference extracted symbol' header)")
    out = set()
    for line in lines[1:]:
        m = _WHY.match(line)
        if m:
            path, _, member = m["extracted"].partition("(")
            out.add(f"{Path(path).name}({member}" if member else Path(path).name)
    return out


def _base_name(demangled: str) -> str:
    """``void MlasFoo<int>(int*)`` -> ``MlasFoo``; ``ns::Cls::f() const`` -> ``f``: the name before the
    parameters and template arguments."""
    head = demangled.split("(", 1)[0]
    depth, cut = 0, len(head)
    for i in range(len(head) - 1, -1, -1):  # drop a trailing <...>
        if head[i] == ">":
            depth += 1
        elif head[i] == "<":
            depth -= 1
            if depth == 0:
                cut = i
                break
        elif depth == 0:
            break
    head = head[:cut]
    return re.findall(r"[A-Za-z_]\w*", head)[-1] if re.findall(r"[A-Za-z_]\w*", head) else head


@dataclass
class Decision:
    needed: list[str]  # MLAS members counted as linked
    kept: set[str]  # fields to keep
    drop: set[str]  # fields to drop


def decide(
    assigns: list[Assignment],
    readers: Readers,
    members: Mapping[str, Member],
    pulled: Iterable[str],
    object_sources: Mapping[str, list[str]],
    mlas_archive: str = MLAS_ARCHIVE,
    platform_member: str = "platform.cpp.o",
) -> Decision:
    """The fields no linked MLAS member reads (module docstring). ``object_sources``: MLAS member name ->
    its sources relative to the MLAS lib dir (``qgemm.cpp.o`` -> ``["qgemm.cpp"]``); a pulled member of the MLAS
    archive with no known source is a BuildError (its reads cannot be counted)."""
    pulled = set(pulled)
    mlas = {k: m for k, m in members.items() if m.archive == mlas_archive}
    platform_key = f"{mlas_archive}({platform_member})"
    if platform_key not in mlas:
        raise BuildError(f"{mlas_archive} has no {platform_member} member: not MLAS's archive")
    outside_defs = set().union(*(m.strong | m.weak for k, m in members.items() if k in pulled and k not in mlas))
    strong_by: dict[str, list[str]] = {}
    weak_by: dict[str, list[str]] = {}
    for k, m in mlas.items():
        for s in m.strong:
            strong_by.setdefault(s, []).append(k)
        for s in m.weak:
            weak_by.setdefault(s, []).append(k)
    by_base: dict[str, list[str]] = {}
    for k, m in mlas.items():
        for s in m.strong | m.weak:
            by_base.setdefault(_base_name(s), []).append(k)

    def definers(sym: str) -> list[str]:
        if sym in strong_by:
            return strong_by[sym]
        if sym in outside_defs:  # an inline function ORT's own objects define: not MLAS's code to follow
            return []
        return weak_by.get(sym, [])

    needed: set[str] = {platform_key}
    todo = [s for k, m in members.items() if k in pulled and k not in mlas for s in m.undefined]

    def close() -> None:
        while todo:
            for k in definers(todo.pop()):
                if k not in needed:
                    needed.add(k)
                    todo.extend(mlas[k].undefined)

    while True:
        close()
        kept = set(readers.always)
        for k in needed:
            if k == platform_key:
                continue
            srcs = object_sources.get(mlas[k].name)
            if not srcs:
                if mlas[k].name.endswith((".S.o", ".s.o", ".asm.o")):
                    continue  # assembly kernels read no table field
                raise BuildError(f"no source known for the linked MLAS member {k}: its field reads cannot be counted")
            for src in srcs:  # two sources of one file name: both counted
                kept |= readers.by_source.get(src, set())
        referenced = {_base_name(s) for k in needed if k != platform_key for s in mlas[k].undefined}
        referenced |= {_base_name(s) for k, m in members.items() if k in pulled and k not in mlas for s in m.undefined}
        for fn, fields in readers.by_platform_function.items():
            if fn in referenced:
                kept |= fields
        grow = [k for a in assigns if a.field in kept for k in by_base.get(a.symbol, []) if k not in needed]
        if not grow:
            break
        for k in grow:
            needed.add(k)
            todo.extend(mlas[k].undefined)
    assigned = {a.field for a in assigns}
    return Decision(sorted(needed), kept & assigned, assigned - kept)


def member_sources(readers: Readers, names: Iterable[str]) -> dict[str, list[str]]:
    """MLAS member name (``qgemm.cpp.o``, as CMake names objects) -> the MLAS sources of that file name."""
    by_base: dict[str, list[str]] = {}
    for src in readers.by_source:
        by_base.setdefault(src.rsplit("/", 1)[-1] + ".o", []).append(src)
    return {n: by_base[n] for n in names if n in by_base}


# ---- in a build tree ---------------------------------------------------------------------------------------
def nm_for(ar: str, path: str | None = None) -> str:
    """The nm that reads the build's objects: the toolchain archiver's sibling (``llvm-ar-16`` ->
    ``llvm-nm-16``: clang's bitcode; ``gcc-ar`` -> ``gcc-nm``: GCC's LTO objects), else gcc-nm or nm."""
    import shutil

    if ar:
        p = Path(ar)
        sibling = p.with_name(p.name.replace("ranlib", "nm").replace("-ar", "-nm").replace("ar", "nm", 1))
        if p.name.startswith(("llvm-ar", "gcc-ar")) and shutil.which(str(sibling), path=path):
            return str(sibling)
    for name in ("gcc-nm", "nm"):
        found = shutil.which(name, path=path)
        if found:
            return found
    raise BuildError("no nm found to read the build's archives (binutils)")


def link_pulled(config_dir: Path, link: str, env: Mapping[str, str] | None = None) -> set[str]:
    """Run the build's own link of ``libonnxruntime.so`` again into a scratch file and return the archive
    members it pulls (``lib.a(member)``): lld reports them with ``--why-extract``, GNU ld in its map."""
    import tempfile

    from ortprune.ortbuild.members import pulled_members

    lld = re.search(r"-fuse-ld=lld\b", link) is not None
    with tempfile.TemporaryDirectory(prefix="ortprune-families-") as tmp:
        out, report = Path(tmp) / "lib.so", Path(tmp) / ("why.txt" if lld else "link.map")
        flag = f"-Wl,--why-extract={report}" if lld else f"-Wl,-Map={report}"
        cmd, n = re.subn(r"(\s)-o\s+libonnxruntime\.so\S*", rf"\1-o {shlex.quote(str(out))} {shlex.quote(flag)}",
                         link, count=1)  # fmt: skip
        # the build's own link.d stays as ninja wrote it
        cmd = re.sub(r"--dependency-file=\S+", f"--dependency-file={shlex.quote(str(Path(tmp) / 'link.d'))}", cmd)
        if n != 1:
            raise BuildError("the build's link command names no -o libonnxruntime.so", config_dir)
        done = subprocess.run(["bash", "-c", cmd], cwd=config_dir, env=dict(env) if env else None,
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0 or not report.is_file():
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise BuildError(f"relinking to see the pulled archive members failed:\n{tail}", config_dir)
        text = report.read_text(errors="replace")
    return pulled_from_why_extract(text) if lld else {f"{a}({m})" for a, m in pulled_members(text)}


def decide_in_build(
    source: Path, config_dir: Path, base_text: str, env: Mapping[str, str] | None = None, ar: str = ""
) -> tuple[Decision, FamilyCut]:
    """After a successful link of the build in ``config_dir``: the fields to drop from ``base_text`` (the
    platform.cpp the build compiles before any drop), and the cut they make."""
    from ortprune.ortbuild.members import link_command

    run = subprocess.run(["ninja", "-C", str(config_dir), "-t", "commands", "onnxruntime"],
                         env=dict(env) if env else None, capture_output=True, text=True, check=False)  # fmt: skip
    if run.returncode != 0:
        raise BuildError(f"ninja -t commands failed: {run.stderr.strip()[:300]}", config_dir)
    link = link_command(run.stdout)
    pulled = link_pulled(config_dir, link, env)
    archives = sorted({config_dir / a for a in re.findall(r"(?<!\S)([^\s'\"]+\.a)(?!\S)", link)})
    if not any(a.name == MLAS_ARCHIVE for a in archives):
        raise BuildError(f"the build's link names no {MLAS_ARCHIVE}", config_dir)
    members = read_archives(archives, nm_for(ar, (env or {}).get("PATH")))
    if "--whole-archive" in link:  # members taken whole are not "extracted": count every member as linked
        pulled |= set(members)
    unread = [k for k in pulled if k.startswith(f"{MLAS_ARCHIVE}(") and not k.endswith(".S.o)")
              and (k not in members or not (members[k].strong or members[k].weak))]  # fmt: skip
    if unread:
        raise BuildError(f"nm read no symbol of the linked MLAS member(s) {', '.join(sorted(unread))}", config_dir)
    assigns = table_assignments(base_text)
    readers = field_readers(source / MLAS_LIB, {a.field for a in assigns})
    mlas_names = [m.name for m in members.values() if m.archive == MLAS_ARCHIVE]
    decision = decide(assigns, readers, members, pulled, member_sources(readers, mlas_names))
    _, cut = drop_fields(base_text, decision.drop)
    cut.needed = decision.needed
    return decision, cut
