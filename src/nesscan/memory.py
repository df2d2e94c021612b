"""Process memory of a whole-proteome run (Linux/glibc; no-ops elsewhere).

* :func:`bound_heap` fixes glibc's allocator thresholds once per run;
* :func:`release_free_memory` hands freed heap back to the system between batches;
* :func:`page_out_cuda_libraries` drops the resident pages of the CUDA libraries that PyPI's
  default (CUDA) torch build loads at import, when the run computes on the CPU only
  (:func:`uses_cuda`): ``predict``, ``embed``, ``window-score`` and ``explain`` call it.
"""

from __future__ import annotations

import logging
import re
import sys

log = logging.getLogger("nesscan.memory")

_MALLOC_TRIM = None

# glibc malloc settings for a whole-proteome run (mallopt parameter numbers from malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
HEAP_MMAP_THRESHOLD = 4 << 20  # arrays from 4 MiB up get their own mapping, unmapped when freed
HEAP_TRIM_THRESHOLD = 64 << 20  # an arena keeps up to 64 MiB of free top before giving it back


def bound_heap() -> bool:
    """Fix glibc's allocator thresholds for this process (``predict`` calls it once, from the
    command line): large arrays (window batches, metapredict activations, tree bins) are mapped
    and unmapped on their own instead of being carved from the arenas, where the four pipeline
    threads' arenas otherwise fragment and the resident size creeps up over a proteome; small
    blocks stay cached in the arenas (a large trim threshold), so the allocator does not hand
    pages back and fault them in again batch after batch. Measured on 2,000 proteins: peak RSS
    -60 MB, wall +1 % (benchmarks/RESULTS.md). The default glibc policy raises the mmap threshold
    dynamically up to 32 MiB as large blocks are freed, which is what fragments. Returns whether
    the settings took (``False`` off glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD))


def release_free_memory() -> None:
    """Give freed heap memory back to the operating system between batches (glibc
    ``malloc_trim``; a no-op elsewhere). Many short-lived arrays of varying size otherwise
    leave the heap fragmented, and the resident size creeps up with the number of proteins."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        _MALLOC_TRIM = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
            except (OSError, AttributeError):
                pass
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MADV_PAGEOUT = 21  # linux/mman-common.h, Linux >= 5.4
# shared libraries of the CUDA side of torch and of NVIDIA's pip wheels (site-packages/nvidia/...)
CUDA_LIBRARY = re.compile(r"/(?:nvidia/|lib(?:torch_cuda|c10_cuda|caffe2_nvrtc|torch_nvshmem|cudnn|cublas|cufft|curand"
                          r"|cusparse|cusolver|nccl|nvrtc|nvJitLink|nvToolsExt|cupti|cufile|cudart)[^/]*$)")


def page_out_cuda_libraries(maps: str = "/proc/self/maps") -> int:
    """Ask the kernel to reclaim the resident pages of the CUDA libraries' read-only mappings
    (code and constants; ``madvise(MADV_PAGEOUT)``), for a run that never calls CUDA. PyPI's
    torch wheel is the CUDA build: ``import torch`` loads cuBLASLt, nvrtc, nvJitLink, ... and
    their start-up touches ~180 MB of their pages, which then sit in the process's resident set
    (and in its cgroup's memory) for the whole run although the CPU path never runs them.
    Advice only: a page that is used after all is read back in on its next access, so results
    cannot change. Writable mappings (relocated data, the libraries' heap) are left alone, and
    the kernel keeps pages that another process maps too (a second run on the machine).
    Returns the bytes of mappings advised (0 off Linux, on kernels before 5.4, or with a
    CPU-only torch build, which loads none of these libraries)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        madvise = libc.madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        madvise.restype = ctypes.c_int
        with open(maps) as fh:
            lines = fh.read().splitlines()
    except (OSError, AttributeError):
        return 0
    advised = 0
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 6 or "w" in parts[1] or not CUDA_LIBRARY.search(parts[5].strip()):
            continue
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        if madvise(lo, hi - lo, _MADV_PAGEOUT) != 0:
            log.debug("madvise(MADV_PAGEOUT) refused (errno %d): CUDA library pages stay resident", ctypes.get_errno())
            return advised
        advised += hi - lo
    if advised:
        log.debug("paged out %d MB of CUDA library mappings (CPU-only run)", advised >> 20)
    return advised


def uses_cuda(embedder=None) -> bool:
    """Whether this run computes on a CUDA device: CUDA already initialised in the process, or
    the embedder, or its disorder tracks (:class:`~nesscan.embedders.ContextEmbedder`), placed on
    one. Without CUDA, :func:`page_out_cuda_libraries` may drop the CUDA libraries' pages."""
    import torch

    devices = [getattr(embedder, "device", None), getattr(getattr(embedder, "tracks", None), "device", None)]
    return torch.cuda.is_initialized() or any(d is not None and torch.device(d).type == "cuda" for d in devices)
