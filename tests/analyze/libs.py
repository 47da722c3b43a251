"""Small C and C++ shared libraries built with gcc/g++ at test time, with known true sizes.

Functions are ``naked`` with a ``.skip N`` body: their size is exactly ``N`` bytes plus what the compiler
appends after a naked body (``ud2`` on x86-64 gcc 12), read from the compiler's own assembly listing, and
tables are ``const char[N]``. Functions are built with ``-falign-functions=1``, so a file's compile unit
covers exactly the sum of its functions. The expected per-function and per-file sizes are thus known
before the linker runs.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# name -> (file, size): the truth the attribution is checked against.
C_FUNCS: dict[str, tuple[str, int]] = {
    "alpha_small": ("a.c", 100),
    "alpha_big": ("a.c", 3000),
    "beta_mid": ("sub/b.c", 1500),
    "beta_tiny": ("sub/b.c", 16),
}
C_TABLES: dict[str, tuple[str, int]] = {"alpha_table": ("a.c", 5000), "beta_table": ("sub/b.c", 777)}


def _c_source(file: str, funcs: dict[str, tuple[str, int]]) -> str:
    lines = []
    for name, (f, size) in funcs.items():
        if f == file:
            lines.append(f'__attribute__((naked, used)) void {name}(void) {{ __asm__(".skip {size}, 0x90"); }}')
    for name, (f, size) in C_TABLES.items():
        if f == file:
            lines.append(f"__attribute__((used)) const char {name}[{size}] = {{1}};")
    return "\n".join(lines) + "\n"


#: A miniature ORT: two kernels registered through BuildKernelCreateInfo<...> in a table, one helper each,
#: one shared helper, and a registration function that is the library's only export.
CXX_ORT = r"""
#include <cstddef>
namespace onnxruntime {
struct KernelCreateInfo { int (*create)(int); };
template <typename T> KernelCreateInfo BuildKernelCreateInfo();
__attribute__((noinline)) int SharedHelper(int x) { volatile int v = x; return v * 3 + 1; }
namespace contrib {
__attribute__((noinline)) int AttentionOnly(int x) {
  volatile int v = x; for (int i = 0; i < 40; ++i) v = v * 7 + i; return v;
}
template <typename T> class Attention {
 public:
  __attribute__((noinline)) static int Compute(int x) { return AttentionOnly(x) + SharedHelper(x) + (int)sizeof(T); }
};
class kCpuExecutionProvider_Attention_kMSDomain_ver1_float;
}  // namespace contrib
__attribute__((noinline)) int ShapeOnly(int x) {
  volatile int v = x; for (int i = 0; i < 90; ++i) v = v * 5 - i;
  switch (x & 7) {  // a jump table: anonymous .rodata only this function uses
    case 0: return v + 11; case 1: return v * 13; case 2: return v - 17; case 3: return v ^ 19;
    case 4: return v + 23; case 5: return v * 29; case 6: return v - 31; default: return v ^ 37;
  }
}
class Shape { public: __attribute__((noinline)) static int Compute(int x) { return ShapeOnly(x) + SharedHelper(x); } };
class kCpuExecutionProvider_Shape_kOnnxDomain_ver1_12;
class kCpuExecutionProvider_Shape_kOnnxDomain_ver13;
template <> KernelCreateInfo BuildKernelCreateInfo<contrib::kCpuExecutionProvider_Attention_kMSDomain_ver1_float>() {
  return KernelCreateInfo{[](int x) { return contrib::Attention<float>::Compute(x); }};
}
template <> KernelCreateInfo BuildKernelCreateInfo<kCpuExecutionProvider_Shape_kOnnxDomain_ver1_12>() {
  return KernelCreateInfo{[](int x) { return Shape::Compute(x) + 1; }};
}
template <> KernelCreateInfo BuildKernelCreateInfo<kCpuExecutionProvider_Shape_kOnnxDomain_ver13>() {
  return KernelCreateInfo{[](int x) { return Shape::Compute(x) + 2; }};
}
using BuildFn = KernelCreateInfo (*)();
// What ORT's reduce_op_kernels.py does to a reduced build: comment out table entries (here: -DDROP_...).
template <> KernelCreateInfo BuildKernelCreateInfo<void>() { return KernelCreateInfo{nullptr}; }
static const BuildFn kTable[] = {
  BuildKernelCreateInfo<void>,  // as in ORT: keeps the table from becoming empty in reduced builds
#ifndef DROP_ATTENTION
  BuildKernelCreateInfo<contrib::kCpuExecutionProvider_Attention_kMSDomain_ver1_float>,
#endif
#ifndef DROP_SHAPE_1_12
  BuildKernelCreateInfo<kCpuExecutionProvider_Shape_kOnnxDomain_ver1_12>,
#endif
#ifndef DROP_SHAPE_13
  BuildKernelCreateInfo<kCpuExecutionProvider_Shape_kOnnxDomain_ver13>,
#endif
};
}  // namespace onnxruntime
extern "C" __attribute__((visibility("default"))) int RegisterKernels(int x) {
  int s = 0;
  for (auto fn : onnxruntime::kTable) {
    auto info = fn();
    if (info.create) s += info.create(x);
  }
  return s;
}
"""


#: Schema registration and graph transformers in ORT's shapes, for the pruning levers: onnx registers every
#: schema of an opset in ``OpSet_*::ForEachSchema`` (ortprune cuts the lines of the versions a config does not
#: resolve to: here ``-DDROP_SCHEMA_ADD_13``), and ORT constructs every transformer in
#: ``GenerateTransformers`` (ortprune drops the construction: ``-DDROP_GELU``). Appended to CXX_ORT.
CXX_LEVERS = r"""
#include <memory>
#include <vector>
namespace onnx {
struct OpSchema { int (*infer)(int); };
template <typename T> OpSchema GetOpSchema();
class Add_Onnx_ver13;
class Add_Onnx_ver14;
__attribute__((noinline)) int AddInference13(int x) {
  volatile int v = x; for (int i = 0; i < 60; ++i) v = v * 3 + i; return v;
}
__attribute__((noinline)) int AddInference14(int x) {
  volatile int v = x; for (int i = 0; i < 70; ++i) v = v * 5 + i; return v;
}
template <> OpSchema GetOpSchema<Add_Onnx_ver13>() { return OpSchema{[](int x) { return AddInference13(x); }}; }
template <> OpSchema GetOpSchema<Add_Onnx_ver14>() { return OpSchema{[](int x) { return AddInference14(x) + 1; }}; }
class OpSet_Onnx_ver13 {  // onnx's macro names a schema class Op_Tag_verN
 public:
  __attribute__((noinline)) static void ForEachSchema(void (*fn)(OpSchema&&)) {
#ifndef DROP_SCHEMA_ADD_13
    fn(GetOpSchema<Add_Onnx_ver13>());
#endif
  }
};
class OpSet_Onnx_ver14 {
 public:
  __attribute__((noinline)) static void ForEachSchema(void (*fn)(OpSchema&&)) { fn(GetOpSchema<Add_Onnx_ver14>()); }
};
}  // namespace onnx
namespace onnxruntime {
class GraphTransformer {
 public:
  virtual ~GraphTransformer() = default;
  virtual int Apply(int x) const = 0;
};
class GeluFusion : public GraphTransformer {
 public:
  __attribute__((noinline)) int Apply(int x) const override {
    volatile int v = x; for (int i = 0; i < 80; ++i) v = v * 11 - i; return v;
  }
};
class ConstantFolding : public GraphTransformer {
 public:
  __attribute__((noinline)) int Apply(int x) const override { volatile int v = x; return v + 5; }
};
__attribute__((noinline)) std::vector<std::unique_ptr<GraphTransformer>> GenerateTransformers() {
  std::vector<std::unique_ptr<GraphTransformer>> transformers;
#ifndef DROP_GELU
  transformers.emplace_back(std::make_unique<GeluFusion>());
#endif
  transformers.emplace_back(std::make_unique<ConstantFolding>());
  return transformers;
}
}  // namespace onnxruntime
static int g_schemas = 0;
static void Sink(onnx::OpSchema&& s) { g_schemas += s.infer(g_schemas); }
extern "C" __attribute__((visibility("default"))) int RegisterSchemasAndOptimize(int x) {
  onnx::OpSet_Onnx_ver13::ForEachSchema(Sink);
  onnx::OpSet_Onnx_ver14::ForEachSchema(Sink);
  int s = g_schemas;
  for (auto& t : onnxruntime::GenerateTransformers()) s += t->Apply(x);
  return s;
}
"""


#: Kernels in ORT's shapes for ``--disable_rtti``: virtual classes (their vtables point at typeinfo), a
#: lambda kept in a std::function (its manager answers typeid queries with the lambda's typeinfo), a
#: shared_ptr (its control block answers get_deleter queries) and an exception class that a kernel throws.
#: Under -fno-rtti only the thrown class keeps its typeinfo. Appended to CXX_ORT.
CXX_RTTI = r"""
#include <exception>
#include <functional>
#include <memory>
namespace onnxruntime {
class OnnxRuntimeException : public std::exception {
 public:
  const char* what() const noexcept override { return "ort"; }
};
class OpKernel {
 public:
  virtual ~OpKernel() = default;
  virtual int Compute(int x) const = 0;
};
class Relu : public OpKernel {
 public:
  __attribute__((noinline)) int Compute(int x) const override {
    if (x == -12345) throw OnnxRuntimeException();
    return x > 0 ? x : 0;
  }
};
class Softmax : public OpKernel {
 public:
  __attribute__((noinline)) int Compute(int x) const override { volatile int v = x; return v * 3 + 1; }
};
__attribute__((noinline)) std::function<int(int)> MakeCallback(int k) { return [k](int x) { return x * k + 7; }; }
}  // namespace onnxruntime
extern "C" __attribute__((visibility("default"))) int RunKernels(int x) {
  std::shared_ptr<onnxruntime::OpKernel> a = std::make_shared<onnxruntime::Relu>();
  std::unique_ptr<onnxruntime::OpKernel> b = std::make_unique<onnxruntime::Softmax>();
  return a->Compute(x) + b->Compute(x) + onnxruntime::MakeCallback(x)(x);
}
"""


@dataclass
class BuiltLib:
    path: Path
    debug: bool
    stripped: bool
    funcs: dict[str, tuple[str, int]] = field(default_factory=dict)
    tables: dict[str, tuple[str, int]] = field(default_factory=dict)


def have_gcc() -> bool:
    return shutil.which("gcc") is not None and shutil.which("g++") is not None


def naked_trailer() -> int:
    """Bytes gcc appends after a naked function's asm body, from its own -S listing (``ud2`` is 2)."""
    out = subprocess.run(
        ["gcc", "-O2", "-S", "-o", "-", "-x", "c", "-"],
        input='__attribute__((naked)) void f(void) { __asm__(".skip 3"); }\n',
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    body = out.split("#NO_APP", 1)[1].split(".cfi_endproc", 1)[0]
    insns = [line.strip() for line in body.splitlines() if line.strip() and not line.strip().startswith(".")]
    sizes = {"ud2": 2, "int3": 1, "hlt": 1, "nop": 1}
    return sum(sizes[i] for i in insns)


def build_c(
    out_dir: Path,
    debug: bool,
    stripped: bool,
    funcs: dict[str, tuple[str, int]] | None = None,
    name: str = "toy",
    flags: list[str] | None = None,
) -> BuiltLib:
    """libtoy.so from a.c and sub/b.c: naked functions and const tables of known sizes."""
    funcs = dict(C_FUNCS if funcs is None else funcs)
    src = out_dir / f"src-{name}"
    for file in {f for f, _ in [*funcs.values(), *C_TABLES.values()]}:
        (src / file).parent.mkdir(parents=True, exist_ok=True)
        (src / file).write_text(_c_source(file, funcs))
    lib = out_dir / f"lib{name}{'-g' if debug else ''}{'-s' if stripped else ''}.so"
    cmd = ["gcc", "-shared", "-fPIC", "-O2", "-falign-functions=1", *(["-g"] if debug else []), *(flags or [])]
    cmd += ["-o", str(lib)]
    cmd += [str(src / f) for f in sorted({f for f, _ in [*funcs.values(), *C_TABLES.values()]})]
    subprocess.run(cmd, check=True, cwd=out_dir)
    if stripped:
        subprocess.run(["strip", "--strip-all", str(lib)], check=True)
    trailer = naked_trailer()
    truth = {fn: (f, size + trailer) for fn, (f, size) in funcs.items()}
    return BuiltLib(lib, debug, stripped, truth, dict(C_TABLES))


def build_cxx_ort(
    out_dir: Path,
    name: str = "libminiort.so",
    defines: list[str] | None = None,
    ldflags: list[str] | None = None,
    levers: bool = False,
    rtti: bool = False,
    cxxflags: list[str] | None = None,
) -> Path:
    """Linked like libonnxruntime.so: a version script exports only the API, --gc-sections drops the rest.
    ``levers`` adds schema registration and graph transformers (CXX_LEVERS), ``rtti`` the virtual classes,
    std::function and exception of CXX_RTTI; ``cxxflags`` go to the compiler (e.g. ``-fno-rtti``)."""
    src = out_dir / f"{Path(name).stem}.cc"
    src.write_text(CXX_ORT + (CXX_LEVERS if levers else "") + (CXX_RTTI if rtti else ""))
    exports = ["RegisterKernels"] + ["RegisterSchemasAndOptimize"] * levers + ["RunKernels"] * rtti
    script = out_dir / f"{Path(name).stem}.lds"
    script.write_text(f"{{ global: {'; '.join(exports)}; local: *; }};\n")
    lib = out_dir / name
    cmd = ["g++", "-shared", "-fPIC", "-Os", "-std=c++17", "-ffunction-sections", "-fdata-sections", *(cxxflags or [])]
    cmd += ["-Wl,--gc-sections", f"-Wl,--version-script={script}", *[f"-D{d}" for d in defines or []]]
    cmd += ldflags or []
    subprocess.run([*cmd, "-o", str(lib), str(src)], check=True)
    return lib


def build_with_dep(out_dir: Path) -> tuple[Path, Path]:
    """libtop.so needing libdep.so (found through RUNPATH $ORIGIN) besides libc: a two-library footprint."""
    (out_dir / "dep.c").write_text("int dep_value(void) { return 42; }\n")
    (out_dir / "top.c").write_text(
        '#include <stdlib.h>\nint dep_value(void);\nint top_value(void) { return dep_value() + (getenv("X") != 0); }\n'
    )
    dep, top = out_dir / "libdep.so", out_dir / "libtop.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(dep), str(out_dir / "dep.c")], check=True)
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-o",
            str(top),
            str(out_dir / "top.c"),
            f"-L{out_dir}",
            "-ldep",
            "-Wl,-rpath,$ORIGIN",
            "-Wl,--enable-new-dtags",
        ],
        check=True,
    )
    return top, dep
