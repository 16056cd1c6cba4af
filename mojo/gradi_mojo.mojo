# The Python extension: checks every argument in Mojo (buffers.mojo), releases the GIL and runs a
# kernel on the numpy memory itself (zero copy, X updated in place). The checks are the C++
# entry points' (native/src/arrays.hpp): a direct call with a bad argument raises TypeError or
# ValueError instead of letting a kernel read or write out of bounds.
#
# Entry points (positional arguments only):
#   seed(X, D, lr, niter, threads[, stress])    the blog's loops (mojo, mojo-parallel)
#   simd_workspace_size(n, dim, threads, itemsize)  elements of a mojo-simd workspace
#   simd_prepare(W, D, dim, threads)            lay D^2 out in workspace W, once per solve
#   simd(W, X, lr, niter, threads[, stress])    the tuned kernel on a prepared workspace
#   info()                                      the SIMD widths compiled in
# seed and simd return X; with stress 1 (default 0; niter >= 1) they return instead the stress
# of the positions the last step started from, a float.

from std.os import abort
from std.python import Python, PythonObject
from std.python._cpython import GILReleased, PyObjectPtr
from std.python.bindings import PythonModuleBuilder
from std.ffi import c_char
from std.memory import Pointer
from std.sys import simd_width_of

from buffers import ArrayInfo, HeldBuffers, check_finite, check_int, type_error, value_error
from seed_kernel import seed_descend
from simd_kernel import PAGE, Layout, simd_descend, simd_prepare

comptime MAX_THREADS = 1024  # as gradi.backends.base.MAX_THREADS
comptime MAX_NITER = 1 << 40  # as gradi.backends.base.MAX_NITER
comptime MAX_DIM = 1 << 20
comptime MAX_N = 1 << 32
comptime MAX_WORKSPACE = Float64(1 << 50)  # elements: far above any memory, far below Int overflow


def arguments(args: PythonObject, name: String, count: Int, optional: Int = 0) raises:
    """`count` positional arguments, and up to `optional` more."""
    if len(args) < count or len(args) > count + optional:
        var takes = String(count) if optional == 0 else String(count, " to ", count + optional)
        raise type_error(String(name, "() takes ", takes, " positional arguments, got ", len(args)))


def check_pair(x: ArrayInfo, d: ArrayInfo) raises:
    """X (N x dim, writeable) and D (N x N) as the C++ entry points check them."""
    x.require_float()
    x.require_same_dtype(d)
    x.require_points()
    d.require_square(x.rows)
    x.require_layout()
    d.require_layout()
    x.require_writeable()
    x.require_apart(d)


# A workspace starts with a header of one cache line: what it was prepared for (magic, N, dim,
# threads) and a busy flag; the Layout follows, on the workspace's first page boundary past the
# header. `simd` refuses a workspace prepared for another
# problem, and one that another call is using (its coordinates, partial sums and counters are
# scratch of one call at a time). The flag is read and written with the GIL held, which orders
# every call.
comptime HEADER = 64
comptime BUSY = 4  # header word of the busy flag
comptime MAGIC = 0x3130577964617267  # "gradiW01"


def aligned_offset(info: ArrayInfo) -> Int:
    """Bytes from the workspace's start to its header: HEADER bytes before a page boundary."""
    return (PAGE - (info.address + HEADER) % PAGE) % PAGE


def workspace_elements(layout: Layout, itemsize: Int) -> Int:
    """Elements of a workspace for `layout`: the Layout, the header, the slack that aligns it."""
    return layout.total() + (HEADER + PAGE) // itemsize


def checked_workspace(info: ArrayInfo, layout: Layout) raises -> Int:
    """The address of the header of workspace W, after checking it can hold `layout`: W is 1-d,
    C-contiguous, writeable and big enough."""
    info.require_layout()
    info.require_writeable()
    var need = aligned_offset(info) + HEADER + layout.total() * info.itemsize
    if info.ndim != 1 or info.nbytes < need:
        raise value_error(String("W must be a 1-d workspace of at least ", workspace_elements(layout, info.itemsize),
                                 " elements for N=", layout.n, ", dim=", layout.dim, ", threads=",
                                 layout.threads, " (see simd_workspace_size), got shape ", info.shape_text()))
    return info.address + aligned_offset(info)


def header(start: Int) -> Pointer[Int64, MutUntrackedOrigin]:
    return Pointer[Int64, MutUntrackedOrigin](unsafe_from_address=start)


def counters_of(start: Int, layout: Layout, itemsize: Int) -> Pointer[Int64, MutUntrackedOrigin]:
    """The Layout's task counters, as Int64, in the workspace whose header is at start."""
    return Pointer[Int64, MutUntrackedOrigin](unsafe_from_address=start + HEADER + layout.counters() * itemsize)


def stresses_of(start: Int, layout: Layout, itemsize: Int) -> Pointer[Float64, MutUntrackedOrigin]:
    """The Layout's per-tile stresses, as Float64, in the workspace whose header is at start."""
    return Pointer[Float64, MutUntrackedOrigin](unsafe_from_address=start + HEADER + layout.stresses() * itemsize)


def claim(start: Int) raises:
    """Mark the workspace busy for this call; ValueError if another call has it."""
    if header(start).unsafe_load(BUSY) != 0:
        raise value_error("W is in use by another call (a workspace serves one call at a time)")
    header(start).unsafe_store(BUSY, 1)


def check_prepared(start: Int, layout: Layout) raises:
    """W's header must say it holds the D^2 tiles of this N and dim, for at least these threads."""
    var h = header(start)
    if h.unsafe_load(0) != MAGIC:
        raise value_error("W is not a prepared workspace (call simd_prepare first)")
    var n = Int(h.unsafe_load(1))
    var dim = Int(h.unsafe_load(2))
    var threads = Int(h.unsafe_load(3))
    if n != layout.n or dim != layout.dim or (dim > 4 and threads < layout.threads):
        raise value_error(String("W was prepared for N=", n, ", dim=", dim, ", threads=", threads,
                                 ", not N=", layout.n, ", dim=", layout.dim, ", threads=", layout.threads))


def check_stress(args: PythonObject, niter: Int) raises -> Bool:
    """The optional sixth argument, the stress flag (0 or 1, default 0); 1 needs a step to
    report on."""
    if len(args) < 6:
        return False
    var stress = check_int(args[5], "stress", 0, 1) == 1
    if stress and niter < 1:
        raise value_error(String("stress needs niter >= 1, got ", niter))
    return stress


def seed(args: PythonObject, mut held: HeldBuffers) raises -> PythonObject:
    arguments(args, "seed", 5, 1)
    var lr = check_finite(args[2], "lr")
    var niter = check_int(args[3], "niter", 0, MAX_NITER)
    var threads = check_int(args[4], "threads", 1, MAX_THREADS)
    var stress = check_stress(args, niter)
    var x = held.take(args[0], "X")
    var d = held.take(args[1], "D")
    check_pair(x, d)
    var d_address = d.address
    var n = x.rows
    var dim = x.cols
    var total: Float64 = 0
    if n > 0 and niter > 0:
        with GILReleased(Python()):
            if x.float_code == ord("f"):
                total = seed_descend[DType.float32](
                    Pointer[Float32, MutUntrackedOrigin](unsafe_from_address=x.address),
                    Pointer[Float32, MutUntrackedOrigin](unsafe_from_address=d_address),
                    n, dim, lr.cast[DType.float32](), niter, threads, stress)
            else:
                total = seed_descend[DType.float64](
                    Pointer[Float64, MutUntrackedOrigin](unsafe_from_address=x.address),
                    Pointer[Float64, MutUntrackedOrigin](unsafe_from_address=d_address),
                    n, dim, lr, niter, threads, stress)
    return PythonObject(total) if stress else args[0]


def checked_layout(n: Int, dim: Int, threads: Int) raises -> Layout:
    var layout = Layout.of(n, dim, threads)
    if layout.total_estimate() > MAX_WORKSPACE:
        raise value_error(String("a workspace for N=", n, ", dim=", dim, ", threads=", threads,
                                 " would exceed 2**50 elements"))
    return layout^


def simd_workspace_size(args: PythonObject, mut held: HeldBuffers) raises -> PythonObject:
    arguments(args, "simd_workspace_size", 4)
    var n = check_int(args[0], "n", 0, MAX_N)
    var dim = check_int(args[1], "dim", 1, MAX_DIM)
    var threads = check_int(args[2], "threads", 1, MAX_THREADS)
    var itemsize = check_int(args[3], "itemsize", 4, 8)
    if itemsize != 4 and itemsize != 8:
        raise value_error(String("itemsize must be 4 (float32) or 8 (float64), got ", itemsize))
    return PythonObject(workspace_elements(checked_layout(n, dim, threads), itemsize))


def simd_prepare_entry(args: PythonObject, mut held: HeldBuffers) raises -> PythonObject:
    arguments(args, "simd_prepare", 4)
    var dim = check_int(args[2], "dim", 1, MAX_DIM)
    var threads = check_int(args[3], "threads", 1, MAX_THREADS)
    var w = held.take(args[0], "W")
    var d = held.take(args[1], "D")
    d.require_float()
    d.require_same_dtype(w)
    d.require_square(-1)
    d.require_layout()
    w.require_apart(d)
    var layout = checked_layout(d.rows, dim, threads)
    var start = checked_workspace(w, layout)
    if header(start).unsafe_load(0) == MAGIC:  # prepared before: not while a call uses it
        claim(start)
    header(start).unsafe_store(0, 0)  # not prepared until the tiles are in
    header(start).unsafe_store(BUSY, 1)
    with GILReleased(Python()):
        if d.float_code == ord("f"):
            simd_prepare[DType.float32](Pointer[Float32, MutUntrackedOrigin](unsafe_from_address=d.address),
                                        Pointer[Float32, MutUntrackedOrigin](unsafe_from_address=start + HEADER),
                                        layout, threads)
        else:
            simd_prepare[DType.float64](Pointer[Float64, MutUntrackedOrigin](unsafe_from_address=d.address),
                                        Pointer[Float64, MutUntrackedOrigin](unsafe_from_address=start + HEADER),
                                        layout, threads)
    header(start).unsafe_store(1, Int64(layout.n))
    header(start).unsafe_store(2, Int64(layout.dim))
    header(start).unsafe_store(3, Int64(layout.threads))
    header(start).unsafe_store(BUSY, 0)
    header(start).unsafe_store(0, MAGIC)
    return args[0]


def simd(args: PythonObject, mut held: HeldBuffers) raises -> PythonObject:
    arguments(args, "simd", 5, 1)
    var lr = check_finite(args[2], "lr")
    var niter = check_int(args[3], "niter", 0, MAX_NITER)
    var threads = check_int(args[4], "threads", 1, MAX_THREADS)
    var stress = check_stress(args, niter)
    var w = held.take(args[0], "W")
    var x = held.take(args[1], "X")
    x.require_float()
    x.require_same_dtype(w)
    x.require_points()
    x.require_layout()
    x.require_writeable()
    x.require_apart(w)
    var layout = checked_layout(x.rows, x.cols, threads)
    var start = checked_workspace(w, layout)
    check_prepared(start, layout)
    var total: Float64 = 0
    if x.rows > 0 and niter > 0:
        claim(start)
        with GILReleased(Python()):
            if x.float_code == ord("f"):
                total = simd_descend[DType.float32](
                    Pointer[Float32, MutUntrackedOrigin](unsafe_from_address=x.address),
                    Pointer[Float32, MutUntrackedOrigin](unsafe_from_address=start + HEADER),
                    layout, lr.cast[DType.float32](), niter, threads,
                    counters_of(start, layout, 4), stresses_of(start, layout, 4), stress)
            else:
                total = simd_descend[DType.float64](
                    Pointer[Float64, MutUntrackedOrigin](unsafe_from_address=x.address),
                    Pointer[Float64, MutUntrackedOrigin](unsafe_from_address=start + HEADER),
                    layout, lr, niter, threads,
                    counters_of(start, layout, 8), stresses_of(start, layout, 8), stress)
        header(start).unsafe_store(BUSY, 0)
    return PythonObject(total) if stress else args[1]


def info(args: PythonObject, mut held: HeldBuffers) raises -> PythonObject:
    arguments(args, "info", 0)
    return Python.dict(
        simd_width_float32=simd_width_of[DType.float32](),
        simd_width_float64=simd_width_of[DType.float64](),
    )


def raise_in_python(message: String):
    """Set the Python exception a check asked for ("TypeError: ..."/"ValueError: ..."); any
    other error (an unexpected failure, not bad input) becomes RuntimeError."""
    ref cpython = Python().cpython()
    var kind = "PyExc_RuntimeError"
    var text = message
    if message.startswith("TypeError: "):
        kind = "PyExc_TypeError"
        text = String(message[byte=String("TypeError: ").byte_length():])
    elif message.startswith("ValueError: "):
        kind = "PyExc_ValueError"
        text = String(message[byte=String("ValueError: ").byte_length():])
    cpython.PyErr_SetString(cpython.get_error_global(kind),
                            rebind[Pointer[c_char, ImmutAnyOrigin]](text.as_c_string_span().ptr()))


def entry[body: def(PythonObject, mut HeldBuffers) raises thin -> PythonObject](
    module: PyObjectPtr, args: PyObjectPtr
) abi("C") -> PyObjectPtr:
    """A CPython function around `body`: the buffers it took are released on every path, and
    its errors become the Python exceptions they name."""
    var held = HeldBuffers()
    try:
        var result = body(PythonObject(from_borrowed=args), held)
        held.release()
        return result.steal_data()
    except e:
        held.release()
        raise_in_python(String(e))
        return PyObjectPtr()


@export
def PyInit_gradi_mojo() abi("C") -> PythonObject:
    try:
        var m = PythonModuleBuilder("gradi_mojo")
        m.def_py_c_function(entry[seed], "seed",
                            docstring="seed(X, D, lr, niter, threads, stress): the blog's loops on X in place")
        m.def_py_c_function(entry[simd_workspace_size], "simd_workspace_size",
                            docstring="simd_workspace_size(n, dim, threads, itemsize): elements of a workspace")
        m.def_py_c_function(entry[simd_prepare_entry], "simd_prepare",
                            docstring="simd_prepare(W, D, dim, threads): lay D^2 out in workspace W")
        m.def_py_c_function(entry[simd], "simd",
                            docstring="simd(W, X, lr, niter, threads, stress): tuned kernel on X in place")
        m.def_py_c_function(entry[info], "info", docstring="info(): the SIMD widths compiled in")
        return m.finalize()
    except e:
        abort(String("gradi_mojo: cannot create the module: ", e))
