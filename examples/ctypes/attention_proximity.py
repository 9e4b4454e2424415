#!/usr/bin/env python3
"""attnprox from another language through the C ABI only: Python's ctypes over libattnprox_c (no attnprox Python
package involved). Loads a model file, runs a text, prints its Attention Proximity, APE and the strongest arcs of
its last token.

    python3 examples/ctypes/attention_proximity.py MODEL.apx "The bank by the river was steep." [LIBRARY]

LIBRARY: the path of libattnprox_c.so.1 (default: found by the dynamic loader, e.g. after installing).
"""
import ctypes
import sys

SIZE_MAX = ctypes.c_size_t(-1).value
APX_OK = 0


class ApeReport(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("has_value", ctypes.c_int32), ("value", ctypes.c_double),
                ("normalized", ctypes.c_double), ("undefined_rows", ctypes.c_int64), ("policy", ctypes.c_int)]


class Encoding(ctypes.Structure):
    _fields_ = [("count", ctypes.c_size_t), ("ids", ctypes.POINTER(ctypes.c_int64)),
                ("tokens", ctypes.POINTER(ctypes.c_char_p)), ("offsets", ctypes.POINTER(ctypes.c_size_t)),
                ("char_offsets", ctypes.POINTER(ctypes.c_size_t)), ("special", ctypes.POINTER(ctypes.c_uint8))]


def load_library(path=None):
    lib = ctypes.CDLL(path or "libattnprox_c.so.1")
    lib.apx_last_error.restype = ctypes.c_char_p
    lib.apx_abi_version.restype = ctypes.c_int
    handle = ctypes.c_void_p
    lib.apx_model_load.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(handle)]
    lib.apx_model_run_text.argtypes = [handle, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p,
                                       ctypes.POINTER(handle)]
    lib.apx_result_num_tokens.argtypes = [handle, ctypes.POINTER(ctypes.c_size_t)]
    lib.apx_result_ap.argtypes = [handle, ctypes.c_int32, ctypes.POINTER(ctypes.c_double)]
    lib.apx_result_ape.argtypes = [handle, ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ApeReport),
                                   ctypes.POINTER(ctypes.c_double), ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
    lib.apx_result_encoding.argtypes = [handle, ctypes.POINTER(ctypes.POINTER(Encoding))]
    lib.apx_encoding_free.argtypes = [ctypes.POINTER(Encoding)]
    lib.apx_result_top_arcs.argtypes = [handle, ctypes.c_int32, ctypes.c_int32, ctypes.c_int64, ctypes.c_int64,
                                        ctypes.c_double, ctypes.POINTER(ctypes.c_int64),
                                        ctypes.POINTER(ctypes.c_double), ctypes.c_size_t,
                                        ctypes.POINTER(ctypes.c_size_t)]
    lib.apx_result_free.argtypes = [handle]
    lib.apx_model_free.argtypes = [handle]
    return lib


def main(model_path, text, library=None):
    lib = load_library(library)

    def check(status, what):
        if status != APX_OK:
            raise SystemExit(f"{what}: {lib.apx_last_error().decode()}")

    model, result = ctypes.c_void_p(), ctypes.c_void_p()
    check(lib.apx_model_load(model_path.encode(), None, ctypes.byref(model)), "load")
    check(lib.apx_model_run_text(model, text.encode(), SIZE_MAX, None, ctypes.byref(result)), "run")
    n, ap = ctypes.c_size_t(), ctypes.c_double()
    report = ApeReport(struct_size=ctypes.sizeof(ApeReport))
    check(lib.apx_result_num_tokens(result, ctypes.byref(n)), "num_tokens")
    check(lib.apx_result_ap(result, -1, ctypes.byref(ap)), "ap")
    check(lib.apx_result_ape(result, -1, 0, ctypes.byref(report), None, 0, None), "ape")
    print(f"N={n.value} AP={ap.value:.9f} APE={report.value:.9f} normalized={report.normalized:.9f} "
          f"undefined={report.undefined_rows}")
    encoding = ctypes.POINTER(Encoding)()
    check(lib.apx_result_encoding(result, ctypes.byref(encoding)), "encoding")
    keys, weights, count = (ctypes.c_int64 * 3)(), (ctypes.c_double * 3)(), ctypes.c_size_t()
    last = n.value - 1
    check(lib.apx_result_top_arcs(result, -1, -1, last, 3, 1.0, keys, weights, 3, ctypes.byref(count)), "arcs")
    tokens = encoding.contents.tokens
    for i in range(count.value):
        print(f"arc {tokens[last].decode()} -> {tokens[keys[i]].decode()} {weights[i]:.6f}")
    lib.apx_encoding_free(encoding)
    lib.apx_result_free(result)
    lib.apx_model_free(model)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
