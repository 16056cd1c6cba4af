"""Counted work (gradi.bench.counted): the formula, the parsing, and real counts at a tiny size.

The counts run numpy under valgrind (a few seconds each); they skip with the reason where
valgrind or pytest-codspeed is missing.
"""

import pytest

from gradi import cli
from gradi.bench import count_descend, counted

EVENTS = {"Ir": 1000, "Dr": 400, "Dw": 100, "I1mr": 10, "D1mr": 20, "D1mw": 5,
          "ILmr": 1, "DLmr": 2, "DLmw": 3}

needs_valgrind = pytest.mark.skipif(counted.unavailable_reason() is not None,
                                    reason=f"cannot count here: {counted.unavailable_reason()}")


def test_estimated_cycles_adds_weighted_misses_to_instructions():
    l1, ll = 10 + 20 + 5, 1 + 2 + 3
    assert counted.estimated_cycles(EVENTS) == 1000 + counted.LL_HIT_CYCLES * (l1 - ll) + counted.RAM_CYCLES * ll
    assert counted.estimated_cycles(EVENTS) == 1000 + 5 * 29 + 35 * 6


def test_per_pair_figures_divide_by_n_squared_times_iterations():
    count = counted.Count("numpy", n=10, niter=5, events=EVENTS, code_path="x")
    assert count.pair_updates == 500
    assert count.instructions_per_pair == 2.0
    assert count.cycles_per_pair == counted.estimated_cycles(EVENTS) / 500


def test_read_totals_takes_the_totals_line_named_by_events(tmp_path):
    path = tmp_path / "callgrind.out"
    path.write_text("# callgrind format\nevents: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\nsummary: 0\n"
                    "fn=(1) f\n0 5 1\ntotals: 1000 400 100 10 20 5 1 2 3\n")
    assert counted.read_totals(path) == EVENTS


def test_read_totals_refuses_a_run_without_cache_simulation(tmp_path):
    path = tmp_path / "callgrind.out"
    path.write_text("events: Ir\ntotals: 1000\n")
    with pytest.raises(counted.CountFailed, match="did not simulate the caches"):
        counted.read_totals(path)
    path.write_text("events: Ir\n")
    with pytest.raises(counted.CountFailed, match="no totals"):
        counted.read_totals(path)


def test_table_gives_figures_and_says_why_a_backend_was_not_counted():
    text = counted.format_table({
        "numpy": counted.Count("numpy", 10, 5, EVENTS, "NumPy dispatch on AVX2"),
        "mojo": counted.NotCountable("mojo is not installed"),
        "cpp": counted.CountFailed("cpp: the counted run failed"),
    })
    assert "instructions/pair" in text and "est. cycles/pair" in text
    assert "2.00" in text and "NumPy dispatch on AVX2" in text
    assert "mojo: skipped: mojo is not installed" in text
    assert "cpp: FAILED: cpp: the counted run failed" in text


def test_without_valgrind_counting_and_the_cli_say_how_to_install_it(monkeypatch, capsys):
    real = counted.host.executable
    monkeypatch.setattr(counted.host, "executable", lambda name: None if name == "valgrind" else real(name))
    assert "apt-get install valgrind" in counted.unavailable_reason()
    with pytest.raises(counted.NotCountable, match="valgrind is not installed"):
        counted.count("numpy")
    assert cli.main(["bench", "--measure", "instructions"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "valgrind is not installed" in error


@needs_valgrind
def test_counts_only_the_descend_call(capsys):
    tiny = counted.count("numpy", n=20, niter=4)
    # Python's start-up and the imports alone execute hundreds of millions of instructions.
    assert 0 < tiny.instructions < 5_000_000
    assert tiny.estimated_cycles > tiny.instructions
    assert tiny.code_path == "NumPy dispatch on AVX2"  # valgrind's CPU has no AVX-512

    assert cli.main(["bench", "--measure", "instructions", "--backends", "numpy"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert header.split()[:3] == ["backend", "N", "iterations"]
    name, n, niter, instructions, cycles = row.split()[:5]
    assert (name, n, niter) == ("numpy", "200", "100")
    assert 1 < float(instructions.replace(",", "")) < float(cycles.replace(",", ""))


def test_the_child_skips_a_backend_this_gradi_does_not_have():
    assert count_descend.run("no-such-backend", 10, 3, 1, "float32") == {
        "skipped": "backend 'no-such-backend' is not in this gradi's registry"}


def test_the_child_names_the_code_path_of_each_family():
    from gradi.backends import BACKENDS

    paths = {name: count_descend.code_path(backend, "x86-64-v3") for name, backend in BACKENDS.items()
             if name != "cpp-simd" or backend.available}
    assert paths["python"] == "interpreter"
    assert paths["mojo-simd"] == "Mojo built for x86-64-v3"
    assert paths["jax"] == "XLA, max ISA AVX2"
    assert paths["numpy"].startswith("NumPy dispatch on ")
