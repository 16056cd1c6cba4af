"""The gradi command line: one clear line and exit code 2 on bad input, real output otherwise."""

import subprocess
import sys

import pytest

from gradi.cli import main


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
    assert "final stress" in out and "shape error" in out and "time" in out


@pytest.mark.parametrize("argv, words", [
    (["solve", "--backend", "nope"], "unknown backend 'nope'"),
    (["solve", "--niter", "ten"], "invalid int value"),
    (["solve", "--lr", "fast"], "must be 'auto' or a number"),
    (["solve", "--lr", "-1"], "lr must be"),
    (["solve", "-n", "1"], "n must be an integer >= 2"),
    (["solve", "--shape", "sphere", "--dim", "2"], "--dim must be 3"),
    (["solve", "--threads", "2", "--backend", "jax"], "runs on one thread"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_give_one_line_and_exit_code_2(argv, words):
    run = subprocess.run([sys.executable, "-m", "gradi", *argv], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], run.stderr


def test_divergence_exits_1_with_advice():
    run = subprocess.run([sys.executable, "-m", "gradi", "solve", "--shape", "sphere", "-n", "1000",
                          "--lr", "0.001", "--niter", "50"], capture_output=True, text=True)
    assert run.returncode == 1 and "smaller lr" in run.stderr


def test_help_is_available_everywhere():
    for argv in (["--help"], ["solve", "--help"], ["backends", "--help"]):
        run = subprocess.run([sys.executable, "-m", "gradi", *argv], capture_output=True, text=True)
        assert run.returncode == 0 and "usage: gradi" in run.stdout
