"""gradi's asv suite (see benchmarks/README.md).

Thread pools are pinned here, before any benchmark module imports NumPy: BLAS threads would
otherwise compete with the parallel backends on a small machine and add noise. The parallel
backends take their thread count explicitly per call (OpenMP ``num_threads(threads)`` in C++,
the worker count in Mojo), so these settings do not limit them. ``setdefault`` keeps a value the
caller chose.
"""

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
