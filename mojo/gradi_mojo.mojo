# The Python extension: checks its arguments (numpy arrays), releases the GIL and runs a kernel.
# Checks here repeat gradi's Python wrapper so that a direct call with a bad buffer raises
# instead of letting the kernel read or write out of bounds (which would kill the interpreter).

from std.os import abort
from std.python import Python, PythonObject
from std.python._cpython import GILReleased
from std.python.bindings import PythonModuleBuilder
from std.memory import Pointer
from std.sys import simd_width_of

from seed_kernel import seed_descend
from simd_kernel import simd_descend


comptime MAX_THREADS = 1024
comptime MAX_NITER = 1 << 40


@fieldwise_init
struct Args(Copyable):
    """Checked arguments: buffer addresses, sizes, float64 lr, dtype flag."""
    var x: Int
    var d: Int
    var n: Int
    var dim: Int
    var lr: Float64
    var niter: Int
    var threads: Int
    var is_f32: Bool


def check_args(X: PythonObject, D: PythonObject, lr: PythonObject, niter: PythonObject,
               threads: PythonObject) raises -> Args:
    if Int(py=X.ndim) != 2 or Int(py=D.ndim) != 2:
        raise Error("X and D must be 2-D arrays")
    var n = Int(py=X.shape[0])
    var dim = Int(py=X.shape[1])
    if dim < 1:
        raise Error("X must have at least one column")
    if Int(py=D.shape[0]) != n or Int(py=D.shape[1]) != n:
        raise Error("D must be n x n with n = X.shape[0]")
    # dtype.char is 'f' for float32 and 'd' for float64 (dtype.name costs ~4 us a call).
    var code = String(py=X.dtype.char)
    if (code != "f" and code != "d") or not Bool(py=X.dtype.isnative):
        raise Error("X must be float32 or float64 in native byte order")
    if String(py=D.dtype.char) != code or not Bool(py=D.dtype.isnative):
        raise Error("X and D must have the same dtype")
    if not Bool(py=X.flags.c_contiguous) or not Bool(py=D.flags.c_contiguous):
        raise Error("X and D must be C-contiguous")
    if not Bool(py=X.flags.writeable):
        raise Error("X must be writeable")
    var steps = Int(py=niter)
    var nthreads = Int(py=threads)
    # Upper bounds keep task counts and per-worker buffers far from overflow and huge allocations.
    if steps < 0 or steps > MAX_NITER:
        raise Error("niter must be in [0, 2**40]")
    if nthreads < 1 or nthreads > MAX_THREADS:
        raise Error("threads must be in [1, 1024]")
    var rate = Float64(py=lr)
    return Args(Int(py=X.ctypes.data), Int(py=D.ctypes.data), n, dim, rate, steps, nthreads,
                code == "f")


def run[dt: DType, tuned: Bool](a: Args):
    var x = Pointer[Scalar[dt], MutUntrackedOrigin](unsafe_from_address=a.x)
    var d = Pointer[Scalar[dt], MutUntrackedOrigin](unsafe_from_address=a.d)
    comptime if tuned:
        simd_descend[dt](x, d, a.n, a.dim, a.lr.cast[dt](), a.niter, a.threads)
    else:
        seed_descend[dt](x, d, a.n, a.dim, a.lr.cast[dt](), a.niter, a.threads)


def descend[tuned: Bool](X: PythonObject, D: PythonObject, lr: PythonObject,
                         niter: PythonObject, threads: PythonObject) raises -> PythonObject:
    var a = check_args(X, D, lr, niter, threads)
    if a.n > 0 and a.niter > 0:
        with GILReleased(Python()):
            if a.is_f32:
                run[DType.float32, tuned](a)
            else:
                run[DType.float64, tuned](a)
    return X


def seed(X: PythonObject, D: PythonObject, lr: PythonObject, niter: PythonObject,
         threads: PythonObject) raises -> PythonObject:
    return descend[False](X, D, lr, niter, threads)


def simd(X: PythonObject, D: PythonObject, lr: PythonObject, niter: PythonObject,
         threads: PythonObject) raises -> PythonObject:
    return descend[True](X, D, lr, niter, threads)


def info() raises -> PythonObject:
    return Python.dict(
        simd_width_float32=simd_width_of[DType.float32](),
        simd_width_float64=simd_width_of[DType.float64](),
    )


@export
def PyInit_gradi_mojo() abi("C") -> PythonObject:
    try:
        var m = PythonModuleBuilder("gradi_mojo")
        m.def_function[seed]("seed", docstring="seed(X, D, lr, niter, threads): plain loops, in place")
        m.def_function[simd]("simd", docstring="simd(X, D, lr, niter, threads): tuned SIMD kernel, in place")
        m.def_function[info]("info", docstring="info(): the SIMD widths compiled in")
        return m.finalize()
    except e:
        abort(String("gradi_mojo: cannot create the module: ", e))
