# What the extension indexes, read from numpy's C level: the object's real type (not its
# `__class__`), then its buffer (PEP 3118: address, shape, strides, format, read-only flag), never
# Python attributes such as `shape` or `ctypes.data`, which a subclass or a look-alike object can
# fake. Every check raises an Error whose message starts with the Python exception to raise
# ("TypeError: ..." or "ValueError: ..."); gradi_mojo.mojo turns it into that exception.

from std.ffi import c_char, c_int
from std.math import isfinite
from std.memory import Pointer
from std.python import Python, PythonObject
from std.python._cpython import PyTypeObject

# PyBUF_STRIDES | PyBUF_FORMAT: shape, strides and the struct-module format of any layout; no
# writeable request, so a read-only array is reported by the `readonly` field, not a BufferError.
comptime BUFFER_FLAGS = 0x1C
comptime MAX_HELD = 3  # the most arrays one call looks at (workspace, X, D)


def type_error(message: String) -> Error:
    return Error(String("TypeError: ", message))


def value_error(message: String) -> Error:
    return Error(String("ValueError: ", message))


struct PyBufferView(Copyable, Defaultable):
    """CPython's Py_buffer (Include/cpython/object.h), field for field (80 bytes on 64-bit)."""
    var buf: Int
    var obj: Int
    var len: Int
    var itemsize: Int
    var readonly: Int32
    var ndim: Int32
    var format: Int
    var shape: Int
    var strides: Int
    var suboffsets: Int
    var internal: Int

    def __init__(out self):
        self.buf = 0
        self.obj = 0
        self.len = 0
        self.itemsize = 0
        self.readonly = 0
        self.ndim = 0
        self.format = 0
        self.shape = 0
        self.strides = 0
        self.suboffsets = 0
        self.internal = 0


@fieldwise_init
struct ArrayInfo(Copyable):
    """What the buffer says about one array: where it is, its shape and its element type."""
    var name: String
    var address: Int
    var nbytes: Int
    var itemsize: Int
    var float_code: Int  # ord("f") for float32, ord("d") for float64, 0 for anything else
    var ndim: Int
    var rows: Int  # shape[0] (1 for a 0-d array)
    var cols: Int  # shape[1] for 2-d arrays, else 1
    var c_contiguous: Bool
    var writeable: Bool

    def size(self) -> Int:
        return self.nbytes // self.itemsize if self.itemsize > 0 else 0

    def require_float(self) raises:
        if self.float_code == 0:
            raise type_error(String(self.name, " must have dtype float32 or float64 in native byte order"))

    def require_same_dtype(self, other: ArrayInfo) raises:
        if self.float_code != other.float_code:
            raise type_error(String(other.name, " must have the same dtype as ", self.name))

    def require_points(self) raises:
        """N x dim positions: 2-d with at least one column."""
        if self.ndim != 2 or self.cols < 1:
            raise value_error(String(self.name, " must be 2-d (N x dim) with dim >= 1, got shape ",
                                     self.shape_text()))

    def require_square(self, n: Int) raises:
        """N x N distances for the N points of X (n < 0: any N)."""
        if self.ndim != 2 or self.cols != self.rows or (n >= 0 and self.rows != n):
            raise value_error(String(self.name, " must be N x N with N = ",
                                     String(n) if n >= 0 else "its rows", ", got shape ", self.shape_text()))

    def require_layout(self) raises:
        if not self.c_contiguous:
            raise value_error(String(self.name, " must be C-contiguous"))
        if self.address % self.itemsize != 0:
            raise value_error(String(self.name, " must be aligned"))

    def require_writeable(self) raises:
        if not self.writeable:
            raise value_error(String(self.name, " must be writeable: it is updated in place"))

    def require_apart(self, other: ArrayInfo) raises:
        var overlap = self.nbytes > 0 and other.nbytes > 0 and self.address < other.address + other.nbytes
        if overlap and other.address < self.address + self.nbytes:
            raise value_error(String(self.name, " and ", other.name, " must not share memory"))

    def shape_text(self) -> String:
        if self.ndim == 0:
            return "()"
        if self.ndim == 1:
            return String("(", self.rows, ",)")
        if self.ndim == 2:
            return String("(", self.rows, ", ", self.cols, ")")
        return String(self.ndim, "-d")


struct HeldBuffers(Defaultable):
    """The buffers a call holds, released together (with the GIL) when the call ends.

    Holding them for the whole call keeps each array's memory exported (numpy refuses to resize
    an exported array) while the kernel runs without the GIL."""
    var views: Array[PyBufferView, MAX_HELD]
    var count: Int

    def __init__(out self):
        self.views = Array[PyBufferView, MAX_HELD](fill=PyBufferView())
        self.count = 0

    def take(mut self, obj: PythonObject, name: String) raises -> ArrayInfo:
        """Check that obj is a numpy.ndarray (its real type) and hold its buffer."""
        ref cpython = Python().cpython()
        var ndarray = Python.import_module("numpy").ndarray
        if cpython.PyObject_TypeCheck(obj._obj_ptr, ndarray._obj_ptr.bitcast[PyTypeObject]()) == 0:
            raise type_error(String(name, " must be a numpy.ndarray, got ",
                                    String(py=Python.type(obj).__name__)))
        if self.count == MAX_HELD:
            raise Error("internal: too many buffers held")
        var status = cpython.lib.call["PyObject_GetBuffer", c_int](
            obj._obj_ptr, Pointer(to=self.views[self.count]), c_int(BUFFER_FLAGS))
        if status != 0:
            cpython.PyErr_Clear()
            raise type_error(String(name, " must have dtype float32 or float64 (numpy cannot export its buffer)"))
        self.count += 1
        return describe(self.views[self.count - 1], cpython.lib.call["PyBuffer_IsContiguous", c_int](
            Pointer(to=self.views[self.count - 1]), c_char(ord("C"))) != 0, name)

    def release(mut self):
        ref cpython = Python().cpython()
        while self.count > 0:
            self.count -= 1
            cpython.lib.call["PyBuffer_Release"](Pointer(to=self.views[self.count]))


def describe(view: PyBufferView, c_contiguous: Bool, name: String) -> ArrayInfo:
    var ndim = Int(view.ndim)
    var shape = Pointer[Int, MutUntrackedOrigin](unsafe_from_address=view.shape)
    var rows = shape.unsafe_load(0) if ndim >= 1 else 1
    var cols = shape.unsafe_load(1) if ndim >= 2 else 1
    var fmt = Pointer[UInt8, MutUntrackedOrigin](unsafe_from_address=view.format)
    var code = 0
    if view.format != 0 and fmt.unsafe_load(1) == 0:
        var c = Int(fmt.unsafe_load(0))
        if (c == ord("f") and view.itemsize == 4) or (c == ord("d") and view.itemsize == 8):
            code = c
    return ArrayInfo(name, view.buf, view.len, view.itemsize, code, ndim, rows, cols, c_contiguous,
                     view.readonly == 0)


def check_int(obj: PythonObject, name: String, low: Int, high: Int) raises -> Int:
    """A Python int (or an object with __index__, such as numpy integers; not a bool) in [low, high]."""
    var builtins = Python.import_module("builtins")
    var value: PythonObject
    try:
        if Bool(py=builtins.isinstance(obj, builtins.bool)):
            raise Error()
        value = Python.import_module("operator").index(obj)
    except:
        raise type_error(String(name, " must be an int, got ", String(py=Python.type(obj).__name__)))
    if Bool(py=value < low) or Bool(py=value > high):
        raise value_error(String(name, " must be in [", low, ", ", high, "], got ", String(py=builtins.str(value))))
    return Int(py=value)


def check_finite(obj: PythonObject, name: String) raises -> Float64:
    """A real number (anything float() accepts, not a string) that is finite."""
    var builtins = Python.import_module("builtins")
    var value: Float64
    try:
        if Bool(py=builtins.isinstance(obj, builtins.str)) or Bool(py=builtins.isinstance(obj, builtins.bytes)):
            raise Error()
        value = Float64(py=builtins.float(obj))
    except:
        raise type_error(String(name, " must be a real number, got ", String(py=Python.type(obj).__name__)))
    if not isfinite(value):
        raise value_error(String(name, " must be finite, got ", value))
    return value
