"""What a benchmark ran on, printed first by every benchmark: the CPU's model and the flags that
decide brogue's fast paths (AVX2, AVX-512, AMX, AVX512-BF16, VNNI), the machine's load, and
what the libraries dispatch to, which shows whether an instruction-set cap is in force.

A cap emulates an older CPU on this one. An AVX2-only CPU, as docs/benchmarks.md measures it:

    env ONEDNN_MAX_CPU_ISA=AVX2 NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR" \
        OPENBLAS_CORETYPE=Haswell make bench-extract

oneDNN's cap holds OpenVINO's convolutions (and TensorFlow's) to AVX2; OpenVINO's own kernels
outside oneDNN are not all capped (YAMNet's final Reduce stays AVX-512), and its capabilities
still list BF16 although bf16 convolutions under the cap fall to reference code, so capped
benchmarks leave bf16 out (`bf16_runs`).
"""

from __future__ import annotations

import os
from pathlib import Path

FLAGS = ("avx2", "avx512f", "amx_tile", "amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni",
         "avx_vnni")
CAPS = ("ONEDNN_MAX_CPU_ISA", "NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE")


def cpu() -> dict[str, object]:
    """{"model", "cores", "flags" (those of FLAGS present), "load_1min", "caps" (the
    instruction-set caps set), "dispatch" (`dispatch()`)}."""
    model, flags = "unknown", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and model == "unknown":
            model = line.split(":", 1)[1].strip()
        elif line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
    return {"model": model, "cores": os.cpu_count(),
            "flags": [flag for flag in FLAGS if flag in flags],
            "load_1min": round(os.getloadavg()[0], 2),
            "caps": {name: os.environ[name] for name in CAPS if os.environ.get(name)},
            "dispatch": dispatch()}  # fmt: skip


def dispatch() -> dict[str, str]:
    """The kernels the libraries pick here: OpenVINO's for an fp32 convolution, numpy's SIMD
    target for float32 log (the front end's), OpenBLAS's core."""
    import numpy as np
    import threadpoolctl

    numpy_target = np.lib.introspect.opt_func_info("log", "float32")["log"]["ff"]["current"]
    np.ones((4, 4), np.float32) @ np.ones((4, 4), np.float32)  # loads OpenBLAS
    blas = [pool.get("architecture", "?") for pool in threadpoolctl.threadpool_info()
            if pool["internal_api"] == "openblas"]  # fmt: skip
    return {"openvino": convolution_kernel("f32"), "numpy": numpy_target,
            "openblas": ",".join(blas) or "none"}


def convolution_kernel(precision: str) -> str:
    """The primitive OpenVINO's CPU plugin runs a 1x1 convolution with at `precision` (f32,
    bf16), such as brgconv_avx512_1x1_f32; ref_... or undef_... is reference code."""
    import numpy as np
    import openvino as ov
    from openvino import opset13

    samples = opset13.parameter([1, 16, 8, 8], np.float32)
    weights = opset13.constant(np.ones((16, 16, 1, 1), np.float32))
    convolution = opset13.convolution(samples, weights, [1, 1], [0, 0], [0, 0], [1, 1])
    compiled = ov.Core().compile_model(ov.Model([convolution], [samples]), "CPU",
                                       {"INFERENCE_PRECISION_HINT": precision})  # fmt: skip
    return next(op.get_rt_info()["primitiveType"].astype(str)
                for op in compiled.get_runtime_model().get_ops()
                if op.get_rt_info()["layerType"].astype(str) == "Convolution")  # fmt: skip


def bf16_runs() -> bool:
    """Whether OpenVINO computes in bf16 natively here, under the cap in force."""
    try:
        kernel = convolution_kernel("bf16")
    except RuntimeError:  # capped below AVX-512, the plugin can fail to build it at all
        return False
    return kernel.endswith("bf16") and not kernel.startswith(("ref", "undef"))


def cpu_line() -> str:
    """One line: the CPU's model, its cores, which of FLAGS it has, the load, the instruction-set
    caps set, the kernels the libraries dispatch to, and EMULATED when oneDNN is capped below
    what the CPU has."""
    found = cpu()
    flags = ", ".join(found["flags"]) or "none of " + ", ".join(FLAGS)
    caps = found["caps"]
    cap = "".join(f"; {name}={value}" for name, value in caps.items())
    kernels = ", ".join(f"{name} {kernel}" for name, kernel in found["dispatch"].items())
    emulated = ("; EMULATED CPU: " + caps["ONEDNN_MAX_CPU_ISA"] + " only"
                if "ONEDNN_MAX_CPU_ISA" in caps else "")  # fmt: skip
    return (f"CPU: {found['model']}, {found['cores']} cores; {flags}; "
            f"load {found['load_1min']}{cap}; kernels: {kernels}{emulated}")
