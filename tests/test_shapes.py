"""Shapes without data files (text, spiral, helix) and the CSV loader with its errors."""

import warnings

import numpy as np
import pytest

from gradi import shapes
from gradi.cli import main


@pytest.mark.parametrize("n", [2, 3, 57, 400])
def test_text_gives_exactly_n_distinct_points(n):
    points = shapes.text(n)
    assert points.shape == (n, 2)
    assert np.all(np.isfinite(points))
    assert len(np.unique(points, axis=0)) == n
    assert np.ptp(points, axis=0).max() == pytest.approx(2.0)


def test_text_follows_the_glyph_outlines_of_the_word():
    one, two = shapes.text(300, "i"), shapes.text(300, "gradi")
    assert np.ptp(one[:, 0]) / np.ptp(one[:, 1]) < 1 < np.ptp(two[:, 0]) / np.ptp(two[:, 1])
    with pytest.raises(ValueError, match="non-empty"):
        shapes.text(10, "   ")


@pytest.mark.parametrize("make, dim", [(shapes.spiral, 2), (shapes.helix, 3)])
def test_spiral_and_helix_have_distinct_points_of_their_dimension(make, dim):
    points = make(250)
    assert points.shape == (250, dim)
    assert len(np.unique(points, axis=0)) == 250
    assert np.linalg.norm(points[:, :2], axis=1).max() <= 1.0 + 1e-12


def test_load_reads_2d_and_3d_files_skipping_comments_and_blank_lines(tmp_path):
    flat = tmp_path / "flat.csv"
    flat.write_text("# x,y\n0,0\n\n1,0\n0.5, 2e-1\n")
    assert np.array_equal(shapes.load(flat), [[0, 0], [1, 0], [0.5, 0.2]])
    solid = tmp_path / "solid.csv"
    solid.write_text("0,0,0\n1,2,3\n")
    assert shapes.load(solid).shape == (2, 3)


@pytest.mark.parametrize("text, words", [
    ("0,0\n1,2,3,4\n", "line 2: 4 columns, but line 1 has 2"),
    ("0,0,0,0\n1,2,3,4\n", "line 1: expected 2 or 3"),
    ("0\n1\n", "line 1: expected 2 or 3"),
    ("0,0\n1,1\n2,2,2\n", "line 3: 3 columns, but line 1 has 2"),
    ("0,0\n1,abc\n", "line 2, column 2: 'abc' is not a number"),
    ("0,0\nnan,1\n", "line 2, column 1: 'nan' is not finite"),
    ("# only a comment\n1,2\n", "at least 2 points, found 1"),
    ("", "at least 2 points, found 0"),
])
def test_load_rejects_malformed_files_naming_file_line_and_problem(tmp_path, text, words):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        shapes.load(path)
    assert str(path) in str(error.value) and words in str(error.value)


def test_load_of_a_missing_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read shape file"):
        shapes.load(tmp_path / "absent.csv")


@pytest.mark.parametrize("rows, dtype, words", [
    (["1,1", "1,1", "1,1"], "float64", "all 3 points are the same point"),
    (["2.5,-1,0"] * 4, "float32", "all 4 points are the same point"),
    (["0,0", "1e-320,0"], "float64", "line 2, column 1: '1e-320' underflows float64"),
    (["0,0", "1e-200,0", "0,1e-200"], "float64", "in float64 their squared distances would underflow to 0"),
    (["0,0", "1e200,0", "0,1e200"], "float64", "in float64 their squared distances would overflow"),
    (["0,0", "1e-30,0", "0,1e-30"], "float32", "in float32 their squared distances would underflow to 0"),
    (["0,0", "1e30,0", "0,1e30"], "float32", "in float32 their squared distances would overflow"),
])
def test_load_refuses_degenerate_shapes_for_the_dtype_they_will_be_solved_in(tmp_path, rows, dtype, words):
    path = tmp_path / "degenerate.csv"
    path.write_text("\n".join(rows))
    with pytest.raises(ValueError) as error:
        shapes.load(path, dtype)
    assert str(path) in str(error.value) and words in str(error.value)


def test_load_keeps_small_and_large_shapes_the_dtype_can_hold(tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("0,0\n1e-30,0\n0,1e-30\n")
    assert shapes.load(path, "float64")[1, 0] == 1e-30
    path.write_text("0,0\n1e15,0\n0,1e15\n")
    assert shapes.load(path, "float32").max() == 1e15


@pytest.mark.parametrize("rows, words", [
    (["1,1", "1,1", "1,1"], "all 3 points are the same point"),
    (["0,0", "1e-320,0"], "underflows float64"),
    (["0,0", "1e-30,0", "0,1e-30"], "in float32 their squared distances would underflow"),
    (["0,0", "1e200,0", "0,1e200"], "overflow"),
])
def test_cli_refuses_degenerate_csv_shapes_before_solving(tmp_path, capsys, rows, words):
    path = tmp_path / "degenerate.csv"
    path.write_text("\n".join(rows))
    assert main(["solve", "--shape", str(path), "--niter", "20"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1
    assert lines[0].startswith("gradi solve: error: ") and words in lines[0]


def test_named_shapes_have_the_dimension_the_registry_says():
    for name, (make, dim) in shapes.NAMED.items():
        points = make(12)
        assert points.shape == (12, 3 if dim is None else dim), name


def test_load_warns_about_duplicated_points(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("0,0\n1,1\n0,0\n2,2\n")
    with pytest.warns(UserWarning, match="1 duplicated point.*line 1"):
        points = shapes.load(path)
    assert points.shape == (4, 2)
    unique = tmp_path / "unique.csv"
    unique.write_text("0,0\n1,1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shapes.load(unique)


def test_cli_solves_a_csv_shape_and_new_named_shapes(tmp_path, capsys):
    path = tmp_path / "tri.csv"
    path.write_text("0,0,0\n1,0,0\n0,1,0\n0,0,1\n")
    assert main(["solve", "--shape", str(path), "--niter", "200"]) == 0
    assert "N=4, dim=3" in capsys.readouterr().out
    for shape in ("text", "spiral", "helix"):
        assert main(["solve", "--shape", shape, "-n", "20", "--niter", "10"]) == 0


@pytest.mark.parametrize("argv, words", [
    (["solve", "--shape", "blob"], "must be one of circle, cube, helix, sphere, spiral, text or a .csv"),
    (["solve", "--shape", "missing.csv"], "cannot read shape file missing.csv"),
    (["solve", "--shape", "helix", "--dim", "2"], "--dim must be 3"),
])
def test_cli_bad_shapes_give_one_line_and_exit_code_2(argv, words, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0]


def test_cli_rejects_a_point_count_that_contradicts_the_csv(tmp_path, capsys):
    path = tmp_path / "pair.csv"
    path.write_text("0,0\n3,4\n")
    assert main(["solve", "--shape", str(path), "-n", "5"]) == 2
    assert "has 2 points; -n must be 2" in capsys.readouterr().err


@pytest.mark.parametrize("word", ["\u200b", "\u200b\u200c", " \u200b "])
def test_text_refuses_a_word_that_draws_nothing(word):
    """Before: AttributeError ("'list' object has no attribute 'flags'") from matplotlib."""
    with pytest.raises(ValueError, match="at least one visible character"):
        shapes.text(200, word)
