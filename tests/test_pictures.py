"""Pictures of a solve: PNG (shape + stress curve), GIF (convergence), HTML (plotly), via the CLI too."""

import importlib.util
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


@pytest.mark.parametrize("option, suffix", [("--plot", ".png"), ("--animate", ".gif"), ("--html", ".html")])
@pytest.mark.parametrize("where, words", [
    ("absent/s", "its folder"), ("folder", "is a folder; give a file name"), ("/proc/s", "cannot write"),
])
def test_cli_refuses_a_picture_path_it_cannot_write_before_solving(tmp_path, capsys, monkeypatch, option,
                                                                   suffix, where, words):
    if option == "--html":
        pytest.importorskip("plotly")
    where += "" if where == "folder" else suffix
    (tmp_path / "folder").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(gradi.cli, "solve", None)  # solving would fail: nothing may run
    assert main(["solve", "-n", "6", option, where]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1
    assert lines[0].startswith("gradi solve: error: ") and words in lines[0] and where in lines[0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["folder"]


def test_cli_writes_exactly_the_path_it_prints(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["solve", "-n", "8", "--niter", "10", "--plot", "plain", "--animate", "moving",
                 "--plot", "drawing.svg"]) == 0
    out = capsys.readouterr().out
    assert "wrote             drawing.svg" in out and "wrote             moving" in out
    assert sorted(path.name for path in tmp_path.iterdir()) == ["drawing.svg", "moving"]
    assert (tmp_path / "drawing.svg").read_text().lstrip().startswith("<?xml")
    with Image.open(tmp_path / "moving") as animation:
        assert animation.format == "GIF" and animation.n_frames > 1
    assert main(["solve", "-n", "8", "--niter", "10", "--plot", "plain"]) == 0
    assert "wrote             plain\n" in capsys.readouterr().out
    with Image.open(tmp_path / "plain") as image:
        assert image.format == "PNG"


def test_cli_refuses_an_image_format_matplotlib_cannot_write(tmp_path, capsys):
    assert main(["solve", "-n", "6", "--plot", str(tmp_path / "s.txt")]) == 2
    assert "matplotlib does not write .txt images" in capsys.readouterr().err


def test_cli_html_without_plotly_is_one_clear_line_and_exit_code_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)  # import now raises ImportError
    assert main(["solve", "-n", "6", "--niter", "5", "--html", str(tmp_path / "s.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--html needs plotly" in err[0] and "pip install" in err[0]
    assert not (tmp_path / "s.html").exists()


def test_frames_are_drawn_in_the_targets_units_and_converge_onto_it():
    target = 2.3 * shapes.circle(8)  # spans +-2.3: drawn at that scale, not normalised
    reference, frames = pictures._frames(target, recorded(target, niter=400, every=100))
    assert np.array_equal(reference, target)
    errors = [np.abs(X - target).max() for _, _, X in frames]
    assert errors[-1] < 1e-3 < errors[0]


@pytest.mark.parametrize("target", [shapes.text(60), shapes.helix(20)], ids=["2d", "3d"])
def test_positions_panel_has_axis_labels_and_a_legend_clear_of_the_points(target):
    figure = pictures.plot_figure(target, recorded(target))
    figure.draw_without_rendering()
    ax = figure.axes[0]
    labels = [ax.get_xlabel(), ax.get_ylabel()] + ([ax.get_zlabel()] if target.shape[1] == 3 else [])
    assert labels == ["x", "y", "z"][:target.shape[1]]
    assert "in its units" in ax.get_title()
    legend = ax.get_legend().get_window_extent()
    assert legend.y1 < ax.get_window_extent().y0  # below the drawing, not over the points
    if target.shape[1] == 2:
        assert legend.y1 < ax.xaxis.label.get_window_extent().y0  # and below the axis label


def test_gif_of_a_wide_shape_has_no_wide_empty_bands(tmp_path):
    target = shapes.text(80)  # about 3.5 times wider than tall
    path = tmp_path / "wide.gif"
    pictures.save_animation(target, recorded(target, niter=1500, every=500), path)
    with Image.open(path) as image:
        width, height = image.size
    assert width / height > 1.4


def test_html_frames_each_give_their_iteration_and_only_the_last_the_disparity():
    pytest.importorskip("plotly")
    target = shapes.circle(10)
    result = recorded(target, niter=20, every=5)
    figure = pictures.html_figure(target, result)
    titles = [frame.layout.title.text for frame in figure.frames]
    assert len(titles) == len(result.history_iterations) == 5
    for iteration, title in zip(result.history_iterations, titles):
        assert f"iteration {iteration}/20" in title
    assert ["Procrustes disparity" in title for title in titles] == [False] * 4 + [True]
    assert figure.layout.title.text == titles[-1]
    assert figure.layout.xaxis.title.text == "x" and figure.layout.yaxis.title.text == "y"


def test_pictures_without_a_target_show_the_positions_centred(tmp_path):
    target = shapes.circle(9) + 5.0
    result = recorded(target, niter=30, every=10)
    reference, frames = pictures._frames(None, result)
    assert np.allclose(reference.mean(axis=0), 0) and np.allclose(frames[-1][2], reference)
    pictures.save_plot(None, result, tmp_path / "alone.png")
    pictures.save_animation(None, result, tmp_path / "alone.gif")
    figure = pictures.plot_figure(None, result)
    assert [text.get_text() for text in figure.axes[0].get_legend().get_texts()] == ["recovered, centred"]
    if importlib.util.find_spec("plotly"):
        assert [trace.name for trace in pictures.html_figure(None, result).data] == ["recovered, centred"]
