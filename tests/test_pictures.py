"""Pictures of a solve: PNG (shape + stress curve), GIF (convergence), HTML (plotly), via the CLI too."""

import sys

import numpy as np
import pytest

import gradi
from gradi import pictures, shapes
from gradi.cli import main

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")


def recorded(target, niter=30, every=5):
    return gradi.solve(gradi.distance_matrix(target), target.shape[1], niter=niter, record_every=every)


@pytest.mark.parametrize("target", [shapes.circle(12), shapes.helix(15)], ids=["2d", "3d"])
def test_plot_writes_a_png_of_the_shape_and_the_stress_curve(tmp_path, target):
    path = tmp_path / "solve.png"
    pictures.save_plot(target, recorded(target), path)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (1200, 520)


@pytest.mark.parametrize("target", [shapes.circle(10), shapes.helix(10)], ids=["2d", "3d"])
def test_animation_is_a_gif_with_a_frame_per_recorded_step(tmp_path, target):
    path = tmp_path / "solve.gif"
    result = recorded(target, niter=12, every=3)
    pictures.save_animation(target, result, path)
    with Image.open(path) as image:
        assert image.format == "GIF" and image.n_frames >= len(result.history_X) > 1


def test_html_is_an_interactive_plotly_page_with_a_frame_per_recorded_step(tmp_path):
    pytest.importorskip("plotly")
    target = shapes.helix(10)
    result = recorded(target, niter=10, every=5)
    path = tmp_path / "solve.html"
    pictures.save_html(target, result, path)
    page = path.read_text()
    assert "scatter3d" in page and page.count('"name":"10"') >= 1 and "Plotly.newPlot" in page


def test_pictures_need_recorded_positions(tmp_path):
    target = shapes.circle(6)
    result = gradi.solve(gradi.distance_matrix(target), 2, niter=5)
    with pytest.raises(ValueError, match="record_every"):
        pictures.save_plot(target, result, tmp_path / "x.png")


def test_record_interval_gives_about_the_frame_count():
    assert pictures.record_every_for(5) == 1
    assert 50 <= 1000 // pictures.record_every_for(1000) <= pictures.FRAMES


def test_cli_writes_every_picture_it_is_asked_for(tmp_path, capsys):
    png, gif = tmp_path / "s.png", tmp_path / "s.gif"
    argv = ["solve", "--shape", "spiral", "-n", "10", "--niter", "10",
            "--plot", str(png), "--animate", str(gif)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"wrote             {png}" in out and f"wrote             {gif}" in out
    with Image.open(png) as image, Image.open(gif) as animation:
        assert image.format == "PNG" and animation.n_frames > 1


def test_cli_refuses_a_picture_path_in_a_missing_folder_before_solving(tmp_path, capsys):
    assert main(["solve", "-n", "6", "--plot", str(tmp_path / "absent" / "s.png")]) == 2
    err = capsys.readouterr()
    assert "its folder does not exist" in err.err and err.out == ""


def test_cli_html_without_plotly_is_one_clear_line_and_exit_code_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)  # import now raises ImportError
    assert main(["solve", "-n", "6", "--niter", "5", "--html", str(tmp_path / "s.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--html needs plotly" in err[0] and "pip install" in err[0]
    assert not (tmp_path / "s.html").exists()


def test_aligned_frames_converge_onto_the_target():
    target = shapes.circle(8)
    standard_target, frames = pictures._frames(target, recorded(target, niter=400, every=100))
    errors = [np.abs(X - standard_target).max() for _, _, X in frames]
    assert errors[-1] < 1e-3 < errors[0]
