// The OpenBLAS CBLAS interface and LAPACKE, from Debian's libopenblas-dev and liblapacke-dev.
// Only RecKernels' `BLAS` layer includes this module (`internal import`), so no C type leaks
// into the public API.
#include <cblas.h>
#include <lapacke.h>
