"""The gradi command line: one clear line and the documented exit code for every failure (bad
input, refused problems, unwritable outputs, Ctrl-C), real output otherwise; solving a user's
distance file, the dry run, and what the summary files hold."""

import json
import os
import re
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import gradi
from gradi.cli import main


def one_error_line(captured, command="gradi solve"):
    """The only line on stderr, checked to start with ``command: error:``; nothing on stdout."""
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1, captured
    assert lines[0].startswith(f"{command}: error: "), lines[0]
    return lines[0]


def run_gradi(*argv, **options):
    """``python -m gradi`` in a fresh process, outside the checkout (whose gradi/ would shadow
    the installed package)."""
    return subprocess.run([sys.executable, "-m", "gradi", *argv], capture_output=True, text=True,
                          cwd=options.pop("cwd", "/"), timeout=options.pop("timeout", 120), **options)


def test_backends_lists_every_registered_backend(capsys):
    import gradi
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    for name in gradi.backends.names():
        assert name in out
    assert "available" in out
    assert "computes in Python floats" in out and "lists of lists" in out


@pytest.mark.parametrize("backend", ["python", "numpy-loops", "numpy", "jax-scan", "jax"])
def test_solve_prints_stress_shape_error_and_time(backend, capsys):
    assert main(["solve", "--shape", "circle", "-n", "12", "--backend", backend, "--niter", "300"]) == 0
    out = capsys.readouterr().out
    threads = gradi.backends.get(backend).default_threads()
    assert re.search(rf"^backend {backend}, N=12, dim=2, float32, threads={threads}, lr=[0-9.e+-]+ \(auto\), "
                     rf"iterations=300 of 300 \(niter reached\)$", out, re.M)
    stress = float(re.search(r"^final stress +(\S+)$", out, re.M)[1])
    error = float(re.search(r"^shape error +(\S+) \(Procrustes disparity", out, re.M)[1])
    seconds, prepare = map(float, re.search(r"^time +(\S+) s \(\+ (\S+) s compile/warm-up\)$", out, re.M).groups())
    assert 0 <= stress < 1e-3 and 0 <= error < 1e-6 and seconds > 0 and prepare >= 0


@pytest.mark.parametrize("argv, words", [
    (["solve", "--backend", "nope"], "gradi solve: error: unknown backend 'nope'"),
    (["solve", "--niter", "ten"], "gradi solve: error: argument --niter: must be an integer in [0, 2**40], got 'ten'"),
    (["solve", "--lr", "fast"], "gradi solve: error: argument --lr: must be 'auto' or a number"),
    (["solve", "--lr", "-1"], "gradi solve: error: argument --lr: must be 'auto' or a positive finite number, "
                              "got '-1'"),
    (["solve", "-n", "1"], "gradi solve: error: argument -n/--points: must be an integer >= 2, got 1"),
    (["solve", "-n", "-3"], "gradi solve: error: argument -n/--points: must be an integer >= 2, got -3"),
    (["solve", "--threads", "0"], "gradi solve: error: argument --threads: must be an integer in [1, 1024], got 0"),
    (["solve", "--threads", "5000"], "gradi solve: error: argument --threads: must be an integer in [1, 1024]"),
    (["solve", "--niter", "-1"], "gradi solve: error: argument --niter: must be an integer in [0, 2**40], got -1"),
    (["solve", "--seed", "-1"], "gradi solve: error: argument --seed: must be an integer >= 0, got -1"),
    (["solve", "--tol", "5"], "gradi solve: error: argument --tol: must be a number in (0, 1), got '5'"),
    (["solve", "--tol", "0"], "gradi solve: error: argument --tol: must be a number in (0, 1), got '0'"),
    (["solve", "--check-every", "5"], "gradi solve: error: --check-every only applies with --tol"),
    (["solve", "--shape", "cube", "--dim", "0"], "gradi solve: error: argument --dim: must be an integer >= 1"),
    (["solve", "--shape", "sphere", "--dim", "2"], "gradi solve: error: shape 'sphere' is 3-D; --dim must be 3"),
    (["solve", "--threads", "2", "--backend", "jax"], "gradi solve: error: backend 'jax' runs on one thread"),
    (["solve", "--shape", "circle", "--distances", "d.csv"], "gradi solve: error: argument --distances: "
                                                             "not allowed with argument --shape"),
    (["solve", "--out", ""], "gradi solve: error: argument --out: needs a file name, got an empty one"),
    (["solve", "--json", ""], "gradi solve: error: argument --json: needs a file name"),
    (["solve", "--distances", ""], "gradi solve: error: argument --distances: needs a file name"),
    (["bench", "--out", ""], "gradi bench: error: argument --out: needs a file name"),
    (["bench", "--budget", "inf"], "gradi bench: error: argument --budget: must be finite"),
    (["bench", "--threads", "0"], "gradi bench: error: argument --threads: must be an integer in [1, 1024]"),
    (["frobnicate"], "gradi: error: argument command: invalid choice"),
])
def test_bad_arguments_give_one_line_and_exit_code_2(argv, words):
    run = run_gradi(*argv)
    assert run.returncode == 2
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(words), run.stderr


def test_divergence_exits_1_with_advice():
    run = run_gradi("solve", "--shape", "sphere", "-n", "1000", "--lr", "0.001", "--niter", "50")
    assert run.returncode == 1 and "smaller lr" in run.stderr
    assert run.stderr.startswith("gradi solve: gradient descent diverged")


def test_help_is_available_everywhere():
    for argv in (["--help"], ["solve", "--help"], ["backends", "--help"], ["bench", "--help"]):
        run = run_gradi(*argv)
        assert run.returncode == 0 and "usage: gradi" in run.stdout


def circle_distances(n=12, scale=1.0):
    return gradi.distance_matrix(scale * gradi.shapes.circle(n))


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_solve_from_a_distance_file_writes_positions_and_a_summary(tmp_path, capsys, suffix):
    D = circle_distances(12, scale=3.0)
    source, positions, summary = tmp_path / f"d{suffix}", tmp_path / f"X{suffix}", tmp_path / "run.json"
    if suffix == ".npy":
        np.save(source, D.astype(np.float32))
    else:
        np.savetxt(source, D, delimiter=",")
    assert main(["solve", "--distances", str(source), "--niter", "800", "--dtype", "float64",
                 "--out", str(positions), "--json", str(summary)]) == 0
    out = capsys.readouterr().out
    assert "N=12, dim=2, float64" in out and "shape error" not in out
    assert f"wrote             {positions}" in out and f"wrote             {summary}" in out
    X = np.load(positions) if suffix == ".npy" else np.loadtxt(positions, delimiter=",")
    assert X.shape == (12, 2) and np.abs(gradi.distance_matrix(X) - D).max() < 1e-3
    document = json.loads(summary.read_text())
    assert document["format"] == "gradi-solve/1" and document["input"] == str(source)
    assert (document["n"], document["dim"], document["backend"], document["dtype"]) == (12, 2, "numpy", "float64")
    assert document["niter"] == document["iterations"] == 800 and document["stop_reason"] == "niter reached"
    assert document["lr_auto"] is True and document["lr"] > 0 and document["tol"] is None
    assert document["procrustes_disparity"] is None  # no target shape is known
    solved = np.load(source) if suffix == ".npy" else np.loadtxt(source, delimiter=",")
    assert document["final_stress"] == pytest.approx(gradi.stress(X, solved), rel=1e-6)
    printed = float(re.search(r"^time +(\S+) s", out, re.M)[1])
    assert float(f"{document['seconds']:.4g}") == printed and document["prepare_seconds"] >= 0


def test_summary_of_a_shape_gives_the_procrustes_error_printed(tmp_path, capsys):
    summary = tmp_path / "run.json"
    assert main(["solve", "--shape", "helix", "-n", "15", "--niter", "300", "--json", str(summary)]) == 0
    printed = float(re.search(r"^shape error +(\S+)", capsys.readouterr().out, re.M)[1])
    document = json.loads(summary.read_text())
    assert document["input"] == "helix" and document["dim"] == 3
    assert float(f"{document['procrustes_disparity']:.3g}") == printed


def test_solve_from_a_distance_file_in_3d_writes_npy_positions(tmp_path, capsys):
    D = gradi.distance_matrix(gradi.shapes.sphere(20))
    source, positions = tmp_path / "d.npy", tmp_path / "X.npy"
    np.save(source, D)
    assert main(["solve", "--distances", str(source), "--dim", "3", "-n", "20", "--niter", "1500",
                 "--out", str(positions)]) == 0
    X = np.load(positions)
    assert X.shape == (20, 3) and X.dtype == np.float32
    assert np.abs(gradi.distance_matrix(X) - D).max() < 1e-2


def asymmetric(D):
    D = D.copy()
    D[0, 1] += 0.5
    return D


def with_entry(D, value):
    D = D.copy()
    D[1, 2] = D[2, 1] = value
    return D


@pytest.mark.parametrize("name, matrix, words", [
    ("wide.npy", np.zeros((3, 4)), "is not square: 3 rows x 4 columns"),
    ("flat.npy", np.zeros(9), "is not a matrix"),
    ("text.npy", np.array([["0", "1"], ["1", "0"]]), "distances must be real numbers"),
    ("asymmetric.npy", asymmetric(circle_distances(5)), "D must be symmetric"),
    ("asymmetric.csv", asymmetric(circle_distances(5)), "D must be symmetric"),
    ("nan.npy", with_entry(circle_distances(5), np.nan), "D must be finite"),
    ("nan.csv", with_entry(circle_distances(5), np.nan), "line 2, column 3: 'nan' is not finite"),
    ("negative.npy", with_entry(circle_distances(5), -1.0), "D must be non-negative"),
    ("negative.csv", with_entry(circle_distances(5), -1.0), "D must be non-negative"),
    ("ragged.csv", "0,1\n1,0,2\n", "line 2: 3 columns, but line 1 has 2"),
    ("words.csv", "0,one\none,0\n", "line 1, column 2: 'one' is not a number"),
    ("absent.csv", None, "cannot read distance file"),
    ("matrix.txt", "0,1\n1,0\n", "must end in .csv or .npy"),
])
def test_bad_distance_files_give_one_line_and_exit_code_2(tmp_path, capsys, monkeypatch, name, matrix, words):
    path = tmp_path / name
    if isinstance(matrix, str):
        path.write_text(matrix)
    elif matrix is not None and name.endswith(".npy"):
        np.save(path, matrix)
    elif matrix is not None:
        np.savetxt(path, matrix, delimiter=",")
    monkeypatch.setattr(gradi.backends.get("numpy"), "descend", None)  # nothing may run
    assert main(["solve", "--distances", str(path)]) == 2
    assert words in one_error_line(capsys.readouterr())


def test_a_point_count_that_contradicts_the_distance_file_is_refused(tmp_path, capsys):
    path = tmp_path / "d.npy"
    np.save(path, circle_distances(6))
    assert main(["solve", "--distances", str(path), "-n", "7"]) == 2
    assert f"{path} has 6 points; -n must be 6 or omitted" in one_error_line(capsys.readouterr())


def _nothing_may_be_read_or_solved(monkeypatch):
    monkeypatch.setattr(gradi.backends.get("numpy"), "descend", None)
    monkeypatch.setattr(gradi.cli, "distance_matrix", None)
    monkeypatch.setattr(gradi.io, "read_distances", None)


def _printed_mib(text):
    value, unit = re.search(r"^memory +about (\S+) (MiB|GiB) at the peak", text, re.M).groups()
    return float(value) * (1024 if unit == "GiB" else 1)


def test_dry_run_prints_the_plan_without_reading_solving_or_writing(tmp_path, capsys, monkeypatch):
    _nothing_may_be_read_or_solved(monkeypatch)
    picture, summary = tmp_path / "s.png", tmp_path / "s.json"
    assert main(["solve", "--shape", "sphere", "-n", "300", "--dry-run", "--plot", str(picture),
                 "--json", str(summary)]) == 0
    out = capsys.readouterr().out
    threads = gradi.backends.get("numpy").default_threads()
    assert (f"backend numpy, N=300, dim=3, float32, threads={threads}, lr=auto (chosen from D when solving), "
            f"niter=1000") in out
    assert re.search(r"^memory +about \S+ MiB at the peak, \S+ MiB of it in use now; \S+ GiB available of "
                     r"\S+ GiB$", out, re.M)
    solving = gradi.memory.input_bytes(300, 3, "float32") + gradi.memory.needed(
        gradi.backends.get("numpy"), 300, 3, "float32", threads)
    assert _printed_mib(out) >= solving / 2**20 + gradi.memory.resident_bytes()[0] / 2**20 * 0.9
    assert f"{gradi.host.usable_cores()} usable cores" in out
    assert "nothing was solved or written" in out and list(tmp_path.iterdir()) == []
    assert main(["solve", "--dry-run", "--lr", "0.002"]) == 0
    assert "lr=0.002, niter=1000" in capsys.readouterr().out


def test_a_dry_run_of_40000_points_allocates_nothing_of_their_size(capsys, monkeypatch):
    """Before: the dry run built D (12.8 GB in float64 with its temporaries) before checking."""
    monkeypatch.setattr(gradi.host, "available_memory", lambda: 2**50)
    _nothing_may_be_read_or_solved(monkeypatch)
    tracemalloc.start()
    try:
        code = main(["solve", "-n", "40000", "--dry-run"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 0 and "N=40000" in capsys.readouterr().out
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MiB allocated by the dry run"


def test_dry_run_refuses_what_a_solve_would_refuse_without_reading_the_distances(tmp_path, capsys, monkeypatch):
    _nothing_may_be_read_or_solved(monkeypatch)
    path = tmp_path / "d.csv"
    path.write_text("0,1,2\n1,0,3\n")
    assert main(["solve", "--distances", str(path), "--dry-run"]) == 2
    assert "is not square: 2 rows x 3 columns" in one_error_line(capsys.readouterr())
    path.write_text("0,1\n1,0\n")
    assert main(["solve", "--distances", str(path), "--out", str(path), "--dry-run"]) == 2
    assert "is the input file" in one_error_line(capsys.readouterr())
    monkeypatch.setattr(gradi.host, "available_memory", lambda: 64 * 2**20)
    assert main(["solve", "-n", "5000", "--dry-run"]) == 2
    assert "problem too large: N=5000" in one_error_line(capsys.readouterr())


def test_a_problem_too_large_is_refused_from_n_alone_before_allocating(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gradi.host, "available_memory", lambda: 64 * 2**20)
    points = tmp_path / "cloud.csv"
    np.savetxt(points, gradi.shapes.cube(5000, 2), delimiter=",")
    matrix = tmp_path / "big.npy"
    np.lib.format.open_memmap(matrix, mode="w+", dtype=np.float32, shape=(5000, 5000)).flush()  # sparse file
    for source in (["--shape", "sphere", "-n", "5000"], ["--shape", str(points)], ["--distances", str(matrix)]):
        tracemalloc.start()
        try:
            code = main(["solve", *source])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert code == 2 and "problem too large: N=5000" in one_error_line(capsys.readouterr())
        assert peak < 8 * 2**20, f"{source}: {peak / 2**20:.0f} MiB allocated before refusing"


def test_a_billion_points_are_refused_at_once_with_one_line():
    run = run_gradi("solve", "--shape", "sphere", "-n", "1000000000", timeout=60)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("gradi solve: error: problem too large: N=1000000000")
    assert len(run.stderr.strip().splitlines()) == 1


def test_a_closed_pipe_on_standard_output_is_one_line_and_exit_code_1():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before gradi writes, as after `gradi backends | head -1`
    try:
        run = subprocess.run([sys.executable, "-m", "gradi", "backends"], stdout=write, stderr=subprocess.PIPE,
                             text=True, cwd="/", timeout=120)
    finally:
        os.close(write)
    assert run.returncode == 1
    assert run.stderr.splitlines() == ["gradi backends: error: cannot write to standard output: Broken pipe"]


def test_a_full_disk_is_one_line_and_exit_code_1(tmp_path):
    with open("/dev/full", "w") as full:
        run = subprocess.run([sys.executable, "-m", "gradi", "solve", "-n", "8", "--niter", "5"], stdout=full,
                             stderr=subprocess.PIPE, text=True, cwd="/", timeout=120)
    assert run.returncode == 1
    assert run.stderr.splitlines() == ["gradi solve: error: cannot write to standard output: No space left on device"]
    run = run_gradi("solve", "-n", "8", "--niter", "5", "--json", "/dev/full")
    assert run.returncode == 1 and "wrote" not in run.stdout
    assert run.stderr.splitlines() == ["gradi solve: error: cannot write /dev/full: No space left on device"]


@pytest.mark.parametrize("argv, words", [
    (["--out", "X.txt"], "--out X.txt must end in .csv or .npy"),
    (["--json", "folder"], "--json folder is a folder"),
    (["--json", "absent/s.json"], "cannot write --json absent/s.json: its folder absent does not exist"),
    (["--json", "/proc/s.json"], "cannot write --json /proc/s.json"),
    (["--json", "same.csv", "--out", "./same.csv"], "--out ./same.csv and --json same.csv name the same file"),
])
def test_output_files_are_checked_before_solving(tmp_path, capsys, monkeypatch, argv, words):
    (tmp_path / "folder").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(gradi.backends.get("numpy"), "descend", None)  # solving would fail
    assert main(["solve", "-n", "6", *argv]) == 2
    assert words in one_error_line(capsys.readouterr())
    assert [path.name for path in tmp_path.iterdir()] == ["folder"]


def test_ctrl_c_during_a_solve_is_one_line_and_exit_code_130(capsys, monkeypatch):
    def interrupted(state, X, niter):
        raise KeyboardInterrupt
    monkeypatch.setattr(gradi.backends.get("numpy"), "descend", interrupted)
    assert main(["solve", "-n", "6"]) == 130
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "gradi solve: interrupted\n"


@pytest.mark.filterwarnings("default::UserWarning")  # the CLI prints what the filters let through
def test_warnings_are_one_line_each(tmp_path, capsys):
    path = tmp_path / "twice.csv"
    path.write_text("0,0\n1,0\n0,1\n1,0\n")
    assert main(["solve", "--shape", str(path), "--niter", "50"]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gradi solve: warning: {path}: 1 duplicated point(s)")


def test_a_bench_where_no_case_could_be_measured_exits_1(tmp_path, capsys, monkeypatch):
    def broken(state, X, niter):
        raise RuntimeError("kernel fault")
    monkeypatch.setattr(gradi.backends.get("numpy"), "descend", broken)
    code = main(["bench", "--backends", "numpy", "--sizes", "5", "--dims", "2", "--niter", "3", "--repeats", "1",
                 "--out", str(tmp_path)])
    assert code == 1
    assert "gradi bench: error: no case could be measured (1 failed)" in capsys.readouterr().err
    assert (tmp_path / "bench.json").exists()  # what was found is still written


def test_summary_says_how_many_iterations_ran_and_why_they_stopped(tmp_path, capsys):
    summary = tmp_path / "run.json"
    assert main(["solve", "-n", "10", "--niter", "100000", "--tol", "1e-3", "--json", str(summary)]) == 0
    document = json.loads(summary.read_text())
    assert document["stop_reason"] == "converged" and document["tol"] == 1e-3
    assert 0 < document["iterations"] < document["niter"] == 100000
    assert f"iterations={document['iterations']} of 100000 (converged)" in capsys.readouterr().out


def test_a_csv_too_large_is_refused_from_its_row_count_before_parsing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gradi.host, "available_memory", lambda: 64 * 2**20)
    points = tmp_path / "cloud.csv"
    points.write_text("# x,y\n" + "0.5,0.25\n" * 4999 + "not,numbers\n")
    assert main(["solve", "--shape", str(points)]) == 2
    assert "problem too large: N=5000" in one_error_line(capsys.readouterr())


def _links(tmp_path, source):
    """Other names of ``source``: a hard link and a symbolic link."""
    hard, soft = tmp_path / f"hard{source.suffix}", tmp_path / f"soft{source.suffix}"
    os.link(source, hard)
    soft.symlink_to(source)
    return hard, soft


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_no_output_may_overwrite_the_input_and_the_input_is_kept(tmp_path, capsys, monkeypatch, suffix):
    """Before: --distances d.npy --out d.npy exited 0 and replaced D by the positions."""
    monkeypatch.setattr(gradi.backends.get("numpy"), "descend", None)  # refused before solving
    monkeypatch.chdir(tmp_path)
    source = tmp_path / f"d{suffix}"
    if suffix == ".npy":
        np.save(source, circle_distances(6))
    else:
        np.savetxt(source, circle_distances(6), delimiter=",")
    kept = source.read_bytes()
    hard, soft = _links(tmp_path, source)
    for option, path in [("--out", str(source)), ("--out", f"./{source.name}"), ("--json", source.name),
                         ("--out", str(hard)), ("--out", str(soft)), ("--json", str(soft))]:
        assert main(["solve", "--distances", source.name, option, path]) == 2
        line = one_error_line(capsys.readouterr())
        assert f"{option} {path} is the input file --distances {source.name}" in line, line
    assert source.read_bytes() == kept


def test_an_output_may_not_overwrite_a_shape_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gradi.backends.get("numpy"), "descend", None)
    points = tmp_path / "points.csv"
    np.savetxt(points, gradi.shapes.circle(6), delimiter=",")
    kept = points.read_bytes()
    assert main(["solve", "--shape", str(points), "--out", str(points)]) == 2
    assert "is the input file --shape" in one_error_line(capsys.readouterr())
    assert points.read_bytes() == kept


def test_two_outputs_may_not_be_one_file_by_a_link(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gradi.backends.get("numpy"), "descend", None)
    summary = tmp_path / "s.json"
    summary.write_text("{}")
    hard, _ = _links(tmp_path, summary)
    assert main(["solve", "-n", "6", "--json", str(summary), "--html", str(hard)]) == 2
    assert f"--html {hard} and --json {summary} name the same file" in one_error_line(capsys.readouterr())


@pytest.mark.parametrize("option, name", [("--distances", "d.npy"), ("--distances", "d.csv"),
                                          ("--shape", "points.csv")])
def test_a_fifo_input_is_refused_at_once_not_waited_on(tmp_path, option, name):
    """Before: gradi waited for a writer forever (and a .csv FIFO was opened twice)."""
    fifo = tmp_path / name
    os.mkfifo(fifo)
    run = run_gradi("solve", option, str(fifo), "--out", str(tmp_path / "X.csv"), timeout=60)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [
        f"gradi solve: error: cannot read {'distance' if option == '--distances' else 'shape'} file {fifo}: "
        f"it is a FIFO (named pipe), not a regular file; gradi reads its input more than once, so save it "
        f"to a file first"]
    assert sorted(path.name for path in tmp_path.iterdir()) == [name]


def test_a_bench_prints_the_reason_of_each_skip(tmp_path, capsys):
    """Before: 'the reasons are above' with no reason printed for a case that could not be built."""
    code = main(["bench", "--backends", "numpy", "--sizes", "1", "--dims", "2", "--niter", "3",
                 "--repeats", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "[1/1] numpy N=1 dim=2 ... skipped: n must be an integer >= 2, got 1\n" in err
    assert err.index("skipped: n must be") < err.index("the reasons are above")


def test_duplicate_sizes_dims_and_backends_are_measured_once():
    """Before: --dims 2,2 measured every case twice."""
    args = gradi.cli.build_parser().parse_args(["bench", "--dims", "3,2,3", "--sizes", "10,10",
                                                "--backends", "numpy,numpy"])
    settings = gradi.cli.bench_settings(args)
    assert (settings.dims, settings.sizes, settings.backends) == ((3, 2), (10,), ("numpy",))


def test_a_bench_size_that_cannot_fit_is_refused_in_one_line():
    """Before: a traceback (unable to allocate 71.1 PiB) after 13-17 s."""
    run = run_gradi("bench", "--sizes", "100,100000000", "--backends", "numpy", timeout=60)
    assert run.returncode == 2 and run.stdout == ""
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert run.stderr.startswith("gradi bench: error: --sizes 100000000 is too large: a case of N=100000000 "
                                 "needs about ")
