"""One torch/BLAS thread per test process (and every subprocess it starts): the tensors here are tiny,
where a second thread only adds synchronisation, and on a shared machine two threads per process made
small operations tens of times slower. Set before torch is imported."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
