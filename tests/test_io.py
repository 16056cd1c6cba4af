"""A user's files: distance matrices read from CSV or .npy, positions and summaries written,
output paths checked before any work; every bad file is one ValueError naming it."""

import json
import os
import threading
import time
import tracemalloc

import numpy as np
import pytest

import gradi
from gradi import io, memory, shapes
from gradi.problem import BLOCK_BYTES


def test_csv_distances_are_read_skipping_comments_blank_lines_and_quotes(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('# three points\n0,3,4\n\n3,0,5\n"4",5,0\n')
    assert io.matrix_size(path) == 3
    assert np.array_equal(io.read_distances(path), [[0, 3, 4], [3, 0, 5], [4, 5, 0]])


def test_npy_distances_are_memory_mapped_and_sized_from_the_header(tmp_path):
    D = gradi.distance_matrix(shapes.circle(7)).astype(np.float32)
    path = tmp_path / "d.npy"
    np.save(path, D)
    assert io.matrix_size(path) == 7
    read = io.read_distances(path)
    assert isinstance(read, np.memmap) and not read.flags.writeable
    assert np.array_equal(read, D) and read.dtype == np.float32


def write_npy(tmp_path, array):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    return path


@pytest.mark.parametrize("text, words", [
    ("0,1\n1,0,3\n", "line 2: 3 columns, but line 1 has 2"),
    ("0,x\n1,0\n", "line 1, column 2: 'x' is not a number"),
    ("0,nan\n1,0\n", "line 1, column 2: 'nan' is not finite"),
    ("0,-inf\n1,0\n", "line 1, column 2: '-inf' is not finite"),
    ("0,1e-400\n1e-400,0\n", "line 1, column 2: '1e-400' underflows float64"),
    ("0,1\n1e-310,0\n", "line 2, column 1: '1e-310' underflows float64"),
    ("0,1,2\n1,0,3\n", "is not square: 2 rows x 3 columns"),
    ("0\n", "at least 2 points are needed, got N=1"),
    ("# nothing\n\n", "no distances in the file"),
])
def test_bad_csv_distance_files_are_refused_naming_file_line_and_problem(tmp_path, text, words):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        io.read_distances(path)
    assert str(path) in str(error.value) and words in str(error.value)


@pytest.mark.parametrize("array, words", [
    (np.zeros(3), "is not a matrix: it holds an array of shape (3,)"),
    (np.zeros((2, 2, 2)), "is not a matrix"),
    (np.zeros((2, 3)), "is not square: 2 rows x 3 columns"),
    (np.zeros((2, 2), dtype=complex), "holds complex128 values"),
    (np.array([["a", "b"], ["c", "d"]]), "holds <U1 values"),
    (np.array([[None, 1], [1, None]], dtype=object), "is not a readable .npy array"),
])
def test_bad_npy_distance_files_are_refused_before_reading_them(tmp_path, array, words):
    path = write_npy(tmp_path, array)
    for read in (io.matrix_size, io.read_distances):
        with pytest.raises(ValueError) as error:
            read(path)
        assert str(path) in str(error.value) and words in str(error.value)


def test_unreadable_distance_files_are_refused(tmp_path):
    cases = {"absent.csv": "No such file", "absent.npy": "No such file",
             "garbage.npy": "not a NumPy .npy file", "truncated.npy": "is not a readable .npy array",
             "latin1.csv": "cannot read distance file", "folder.npy": "cannot read distance file",
             "d.txt": "must end in .csv or .npy, got '.txt'", "noext": "got no extension"}
    (tmp_path / "garbage.npy").write_bytes(b"not numpy at all")
    np.save(tmp_path / "whole.npy", np.zeros((50, 50)))
    (tmp_path / "truncated.npy").write_bytes((tmp_path / "whole.npy").read_bytes()[:300])
    (tmp_path / "latin1.csv").write_bytes("0,1\n1,0 \xe9\n".encode("latin-1"))
    (tmp_path / "folder.npy").mkdir()
    for name, words in cases.items():
        with pytest.raises(ValueError, match=words):
            io.read_distances(tmp_path / name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_positions_are_written_exactly_as_csv_or_npy(tmp_path, dtype, suffix):
    X = np.random.default_rng(1).standard_normal((9, 3)).astype(dtype) * 1e3
    path = tmp_path / f"X{suffix}"
    io.write_positions(path, X)
    read = np.load(path) if suffix == ".npy" else np.loadtxt(path, delimiter=",", dtype=dtype)
    assert np.array_equal(read, X)


def test_json_summary_writes_non_finite_numbers_as_null(tmp_path):
    path = tmp_path / "s.json"
    io.write_json(path, {"n": 3, "stress": float("nan"), "nested": {"x": float("inf"), "y": 1.5}})
    assert json.loads(path.read_text()) == {"n": 3, "stress": None, "nested": {"x": None, "y": 1.5}}


def test_writable_paths_pass_and_nothing_is_created(tmp_path):
    io.check_writable(tmp_path / "new.png", "--plot")
    existing = tmp_path / "old.csv"
    existing.write_text("kept")
    io.check_writable(existing, "--out")
    assert sorted(os.listdir(tmp_path)) == ["old.csv"] and existing.read_text() == "kept"


def test_unwritable_paths_are_refused_before_any_work(tmp_path):
    (tmp_path / "folder").mkdir()
    cases = [(tmp_path / "folder", "is a folder; give a file name"),
             (tmp_path / "absent" / "x.png", "its folder"),
             ("/proc/x.png", "cannot write --plot /proc/x.png"),
             ("/proc/self/x.png", "cannot write --plot")]
    for path, words in cases:
        with pytest.raises(ValueError, match=words):
            io.check_writable(path, "--plot")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ValueError, match="Permission denied"):
        io.check_writable(locked / "x.png", "--plot")


def test_a_fifo_without_reader_is_refused_at_once_not_waited_on(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = time.perf_counter()
    with pytest.raises(ValueError, match="cannot write --json"):
        io.check_writable(fifo, "--json")
    assert time.perf_counter() - started < 5


def test_csv_shape_counts_rows_and_first_row_columns_without_parsing(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("# header\n1,2,3\n\nnot,a,number\n4,5\n")
    assert io.csv_shape(path) == (3, 3)
    with pytest.raises(ValueError, match="cannot read file"):
        io.csv_shape(tmp_path / "absent.csv")


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path):
    """Before: '\ufeff0' is not a number (spreadsheet programs write the mark)."""
    distances, points = tmp_path / "d.csv", tmp_path / "p.csv"
    distances.write_bytes("0,3\r\n3,0\r\n".encode("utf-8-sig"))
    points.write_bytes("# x,y\n0,0\n1,0\n".encode("utf-8-sig"))
    assert io.matrix_size(distances) == 2
    assert np.array_equal(io.read_distances(distances, "float32"), [[0, 3], [3, 0]])
    assert np.array_equal(shapes.load(points), [[0, 0], [1, 0]])


def _finishes(call, seconds=30):
    """What ``call()`` raised, checking that it returned within ``seconds`` (a hang fails, not waits)."""
    outcome = []

    def run():
        try:
            call()
        except Exception as exc:  # the refusal under test
            outcome.append(exc)
        else:
            outcome.append(None)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still waiting after {seconds} s"
    return outcome[0]


@pytest.mark.parametrize("read", [io.matrix_size, io.read_distances, io.csv_shape, shapes.load])
@pytest.mark.parametrize("name", ["fifo.csv", "fifo.npy"])
def test_a_fifo_input_is_refused_without_waiting_for_a_writer(tmp_path, read, name):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    error = _finishes(lambda: read(fifo))
    assert isinstance(error, ValueError) and f"{fifo}: it is a FIFO (named pipe), not a regular file" in str(error)


def test_a_device_input_is_refused():
    with pytest.raises(ValueError, match="/dev/null: it is a character device, not a regular file"):
        io.csv_shape("/dev/null")


def _traced(call):
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("stored", ["float64", "int64", "float32"])
def test_npy_distances_are_read_into_the_solves_dtype_a_row_block_at_a_time(tmp_path, order, stored):
    """Before: a float32 solve of a float64 file held the mapped float64 pages and a copy."""
    n = 1200
    D = np.asarray(np.rint(100 * gradi.distance_matrix(shapes.cube(n, 3))), dtype=stored, order=order)
    D[0, 1] += 1  # not symmetric: the order of the file decides which entry lands where
    path = tmp_path / "d.npy"
    np.save(path, D)
    read, peak = _traced(lambda: io.read_distances(path, "float32"))
    assert read.dtype == np.float32 and read.flags.c_contiguous and not isinstance(read, np.memmap)
    assert np.array_equal(read, D.astype(np.float32))
    blocks = memory.INPUT_BLOCKS * BLOCK_BYTES
    assert peak <= n * n * 4 + blocks, f"{(peak - n * n * 4) / 2**20:.1f} MiB beyond D"


def test_csv_distances_are_read_into_the_solves_dtype_a_row_block_at_a_time(tmp_path):
    n = 1000
    D = gradi.distance_matrix(shapes.cube(n, 3))
    path = tmp_path / "d.csv"
    np.savetxt(path, D, delimiter=",")
    read, peak = _traced(lambda: io.read_distances(path, "float32"))
    assert read.dtype == np.float32 and np.array_equal(read, D.astype(np.float32))
    assert peak <= n * n * 4 + memory.INPUT_BLOCKS * BLOCK_BYTES, f"{(peak - n * n * 4) / 2**20:.1f} MiB beyond D"


def test_a_csv_row_of_another_width_is_named_in_any_block(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "BLOCK_BYTES", 8)  # lines 1 and 2 in a block, line 3 in the next
    path = tmp_path / "d.csv"
    path.write_text("0,1,2\n1,0,3\n2,3,0,\n")
    with pytest.raises(ValueError, match="line 3: 4 columns, but line 1 has 3"):
        io.read_distances(path)


def test_a_distance_the_solves_dtype_cannot_hold_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "d.npy"
    np.save(path, np.array([[0.0, 1e39], [1e39, 0.0]]))
    with pytest.raises(ValueError, match=r"d.npy: distances up to 1e\+39 do not fit in float32"):
        io.read_distances(path, "float32")
    assert io.read_distances(path, "float64")[0, 1] == 1e39
