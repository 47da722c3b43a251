/* ortprune's runner: loads a libonnxruntime.so with dlopen and drives it through the ORT C API, so that a
 * library for another machine (linux-aarch64 on an x86-64 host) can be used under qemu-user.
 *
 *   runner LIB version
 *   runner LIB session MODEL LEVEL LOG THREADS [-o OPTIMIZED] [-c KEY=VALUE]... [-i INPUTS -r OUTPUTS]
 *   runner LIB probe LEVEL MODEL...
 *
 * Prints JSON lines on stdout: {"version": ...}; {"code": null} or {"code": N, "message": ...} per session
 * (per model for probe). INPUTS/OUTPUTS are tensor files: "ORTT", u32 count, then per tensor u32 name length,
 * name, i32 ONNX element type, u32 rank, i64 dims[rank], u64 byte count, bytes (little-endian).
 * The OrtApi slot indices come from ortprune.runtime._capi (runner_slots.h, written before compiling).
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner_slots.h"

typedef void *S; /* OrtStatus*: NULL is success */
typedef struct { const void *(*GetApi)(uint32_t); const char *(*GetVersionString)(void); } ApiBase;
static void *const *api;
#define FN(name, ret, ...) ((ret(*)(__VA_ARGS__))api[SLOT_##name])

static void json_str(const char *s) {
  putchar('"');
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

/* prints a status as {"code": null} or {"code": N, "message": ...} and releases it */
static void print_status(S st) {
  if (!st) {
    printf("{\"code\": null}");
    return;
  }
  printf("{\"code\": %d, \"message\": ", FN(GetErrorCode, int, S)(st));
  json_str(FN(GetErrorMessage, const char *, S)(st));
  printf("}");
  FN(ReleaseStatus, void, S)(st);
}

/* 1 (and prints the error line) when st is an error */
static int failed(S st) {
  if (!st) return 0;
  print_status(st);
  printf("\n");
  return 1;
}

static void die(const char *what, const char *detail) {
  printf("{\"fatal\": ");
  json_str(what);
  printf(", \"detail\": ");
  json_str(detail);
  printf("}\n");
  exit(2);
}

static size_t elem_size(int t) {
  switch (t) {
    case 1: case 6: case 12: return 4;                 /* float, int32, uint32 */
    case 2: case 3: case 9: return 1;                  /* uint8, int8, bool */
    case 4: case 5: case 10: case 16: return 2;        /* uint16, int16, float16, bfloat16 */
    case 7: case 11: case 13: case 14: return 8;       /* int64, double, uint64, complex64 */
    case 15: return 16;
    default: return 0;
  }
}

typedef struct { char *name; int type; uint32_t rank; int64_t *dims; uint64_t nbytes; void *data; } Tensor;

static void rd(void *p, size_t n, FILE *f, const char *path) {
  if (n && fread(p, 1, n, f) != n) die("truncated tensor file", path);
}

static Tensor *read_tensors(const char *path, uint32_t *count) {
  FILE *f = fopen(path, "rb");
  char magic[4];
  if (!f) die("cannot open the inputs", path);
  rd(magic, 4, f, path);
  if (memcmp(magic, "ORTT", 4)) die("not a tensor file", path);
  rd(count, 4, f, path);
  Tensor *t = calloc(*count ? *count : 1, sizeof(Tensor));
  for (uint32_t i = 0; i < *count; i++) {
    uint32_t len;
    rd(&len, 4, f, path);
    t[i].name = calloc(len + 1, 1);
    rd(t[i].name, len, f, path);
    rd(&t[i].type, 4, f, path);
    rd(&t[i].rank, 4, f, path);
    t[i].dims = calloc(t[i].rank + 1, sizeof(int64_t));
    rd(t[i].dims, 8 * (size_t)t[i].rank, f, path);
    rd(&t[i].nbytes, 8, f, path);
    t[i].data = malloc(t[i].nbytes ? t[i].nbytes : 1);
    rd(t[i].data, t[i].nbytes, f, path);
  }
  fclose(f);
  return t;
}

static void wr(const void *p, size_t n, FILE *f, const char *path) {
  if (n && fwrite(p, 1, n, f) != n) die("cannot write the outputs", path);
}

static void *make_options(int level, int log, int threads, const char *optimized, char **config, int nconfig) {
  void *so = NULL;
  if (failed(FN(CreateSessionOptions, S, void **)(&so))) return NULL;
  if (failed(FN(SetSessionGraphOptimizationLevel, S, void *, int)(so, level)) ||
      failed(FN(SetSessionLogSeverityLevel, S, void *, int)(so, log)) ||
      (threads > 0 && failed(FN(SetIntraOpNumThreads, S, void *, int)(so, threads))) ||
      (optimized && failed(FN(SetOptimizedModelFilePath, S, void *, const char *)(so, optimized))))
    return NULL;
  for (int i = 0; i < nconfig; i++) {
    char *eq = strchr(config[i], '=');
    if (!eq) die("config entries are KEY=VALUE", config[i]);
    *eq = 0;
    if (failed(FN(AddSessionConfigEntry, S, void *, const char *, const char *)(so, config[i], eq + 1))) return NULL;
  }
  return so;
}

static int run(void *sess, const char *in_path, const char *out_path) {
  uint32_t n_in;
  Tensor *in = read_tensors(in_path, &n_in);
  void *mem = NULL, *alloc = NULL;
  size_t n_out;
  if (failed(FN(CreateCpuMemoryInfo, S, int, int, void **)(1, 0, &mem)) ||
      failed(FN(GetAllocatorWithDefaultOptions, S, void **)(&alloc)) ||
      failed(FN(SessionGetOutputCount, S, void *, size_t *)(sess, &n_out)))
    return 1;
  const char **in_names = calloc(n_in + 1, sizeof(char *));
  void **in_vals = calloc(n_in + 1, sizeof(void *));
  for (uint32_t i = 0; i < n_in; i++) {
    in_names[i] = in[i].name;
    if (failed(FN(CreateTensorWithDataAsOrtValue, S, void *, void *, size_t, const int64_t *, size_t, int, void **)(
            mem, in[i].data, in[i].nbytes, in[i].dims, in[i].rank, in[i].type, &in_vals[i])))
      return 1;
  }
  char **out_names = calloc(n_out + 1, sizeof(char *));
  void **out_vals = calloc(n_out + 1, sizeof(void *));
  for (size_t i = 0; i < n_out; i++)
    if (failed(FN(SessionGetOutputName, S, void *, size_t, void *, char **)(sess, i, alloc, &out_names[i]))) return 1;
  if (failed(FN(Run, S, void *, void *, const char *const *, void *const *, size_t, const char *const *, size_t,
                void **)(sess, NULL, in_names, in_vals, n_in, (const char *const *)out_names, n_out, out_vals)))
    return 1;
  FILE *f = fopen(out_path, "wb");
  if (!f) die("cannot write the outputs", out_path);
  uint32_t n32 = (uint32_t)n_out;
  wr("ORTT", 4, f, out_path);
  wr(&n32, 4, f, out_path);
  for (size_t i = 0; i < n_out; i++) {
    void *info = NULL, *data = NULL;
    int type;
    size_t rank;
    if (failed(FN(GetTensorTypeAndShape, S, void *, void **)(out_vals[i], &info)) ||
        failed(FN(GetTensorElementType, S, void *, int *)(info, &type)) ||
        failed(FN(GetDimensionsCount, S, void *, size_t *)(info, &rank)))
      return 1;
    int64_t *dims = calloc(rank + 1, sizeof(int64_t));
    if (failed(FN(GetDimensions, S, void *, int64_t *, size_t)(info, dims, rank))) return 1;
    FN(ReleaseTensorTypeAndShapeInfo, void, void *)(info);
    uint64_t count = 1;
    for (size_t d = 0; d < rank; d++) count *= (uint64_t)dims[d];
    if (!elem_size(type)) die("an output has an element type the runner does not exchange", out_names[i]);
    uint64_t nbytes = count * elem_size(type);
    if (count && failed(FN(GetTensorMutableData, S, void *, void **)(out_vals[i], &data))) return 1;
    uint32_t len = (uint32_t)strlen(out_names[i]), rank32 = (uint32_t)rank;
    wr(&len, 4, f, out_path);
    wr(out_names[i], len, f, out_path);
    wr(&type, 4, f, out_path);
    wr(&rank32, 4, f, out_path);
    wr(dims, 8 * rank, f, out_path);
    wr(&nbytes, 8, f, out_path);
    wr(data, nbytes, f, out_path);
    free(dims);
    FN(ReleaseValue, void, void *)(out_vals[i]);
    FN(AllocatorFree, S, void *, void *)(alloc, out_names[i]);
  }
  if (fclose(f)) die("cannot write the outputs", out_path);
  for (uint32_t i = 0; i < n_in; i++) FN(ReleaseValue, void, void *)(in_vals[i]);
  FN(ReleaseMemoryInfo, void, void *)(mem);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 3) die("usage: runner LIB version|session|probe ...", "");
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) die("cannot load the library", dlerror());
  const ApiBase *(*get_base)(void) = (const ApiBase *(*)(void))dlsym(lib, "OrtGetApiBase");
  if (!get_base) die("not an ONNX Runtime library (no OrtGetApiBase)", argv[1]);
  const ApiBase *base = get_base();
  /* ORT 1.x serves API versions up to x: ask for that (capped at the newest the slots were checked on) */
  const char *version = base->GetVersionString(), *dot = strchr(version, '.');
  uint32_t v = dot ? (uint32_t)atoi(dot + 1) : 0;
  if (v > MAX_API_VERSION) v = MAX_API_VERSION;
  if (v >= MIN_API_VERSION) api = base->GetApi(v);
  if (!api) die("the library serves no C API version the runner knows", version);
  if (!strcmp(argv[2], "version")) {
    printf("{\"version\": ");
    json_str(version);
    printf("}\n");
    return 0;
  }
  void *env = NULL;
  if (failed(FN(CreateEnv, S, int, const char *, void **)(3, "ortprune-runner", &env))) return 1;
  if (!strcmp(argv[2], "session") && argc >= 7) {
    const char *optimized = NULL, *in = NULL, *out = NULL;
    char **config = calloc((size_t)argc, sizeof(char *));
    int nconfig = 0;
    for (int i = 7; i + 1 < argc; i += 2) {
      if (!strcmp(argv[i], "-o")) optimized = argv[i + 1];
      else if (!strcmp(argv[i], "-c")) config[nconfig++] = argv[i + 1];
      else if (!strcmp(argv[i], "-i")) in = argv[i + 1];
      else if (!strcmp(argv[i], "-r")) out = argv[i + 1];
      else die("unknown option", argv[i]);
    }
    void *so = make_options(atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), optimized, config, nconfig), *sess = NULL;
    if (!so || failed(FN(CreateSession, S, void *, const char *, void *, void **)(env, argv[3], so, &sess))) return 1;
    if (in && out && run(sess, in, out)) return 1;
    FN(ReleaseSession, void, void *)(sess);
    FN(ReleaseSessionOptions, void, void *)(so);
    printf("{\"code\": null}\n");
  } else if (!strcmp(argv[2], "probe") && argc >= 4) {
    void *so = make_options(atoi(argv[3]), 4, 1, NULL, NULL, 0);
    if (!so) return 1;
    for (int i = 4; i < argc; i++) {
      void *sess = NULL;
      printf("{\"id\": ");
      json_str(argv[i]);
      printf(", \"result\": ");
      S st = FN(CreateSession, S, void *, const char *, void *, void **)(env, argv[i], so, &sess);
      print_status(st);
      printf("}\n");
      if (!st) FN(ReleaseSession, void, void *)(sess);
    }
    FN(ReleaseSessionOptions, void, void *)(so);
  } else {
    die("usage: runner LIB version|session|probe ...", argv[2]);
  }
  FN(ReleaseEnv, void, void *)(env);
  return 0;
}
