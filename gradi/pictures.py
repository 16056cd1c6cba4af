"""Pictures of one solve: a PNG (final positions + stress curve), a GIF of the points converging,
an interactive HTML page (plotly).

Positions are drawn in the target's coordinates and units: every recorded frame is moved rigidly
onto the target (the rotation or reflection and translation that fit best, no scaling: see
gradi.align.onto), so what moves is the shape itself, not its arbitrary placement, and a shape of
the wrong size shows as one. Without a target (a solve from a user's distance matrix) the frames
are moved onto the final positions, centred on the origin. The positions come from
``solve(..., record_every=k)``; ``record_every_for(niter)`` picks k for about ``FRAMES`` frames.
Each picture is written to exactly the path given. Drawing uses matplotlib's non-interactive Agg
canvas, so no display is needed.
"""

import importlib
from pathlib import Path

import numpy as np

from .align import onto, procrustes_disparity

FRAMES = 60
FPS = 12
GIF_INCHES = 5.0  # the longer side of the GIF's drawing area
GIF_DPI = 80


def record_every_for(niter):
    """Recording interval giving about FRAMES frames over ``niter`` iterations."""
    return max(1, -(-niter // FRAMES))


def require(module, extra, flag):
    """Import ``module`` or raise ImportError saying which option needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{flag} needs {module.split('.')[0]}, which is not installed; "
                          f"pip install 'gradi[{extra}]'") from None


def plot_format(path):
    """The image format of ``path`` for ``save_plot``: its extension, or png when it has none."""
    from matplotlib.figure import Figure

    suffix = Path(path).suffix.lower().lstrip(".")
    formats = Figure().canvas.get_supported_filetypes()
    if suffix and suffix not in formats:
        raise ValueError(f"cannot draw {path}: matplotlib does not write .{suffix} images; use one "
                         f"of {', '.join('.' + name for name in sorted(formats))}")
    return suffix or "png"


def _frames(target, result):
    """(reference, [(iteration, stress, positions moved onto the reference)]) of a recorded result.

    The reference is the target, or the final positions centred when there is no target.
    """
    if not result.history_X:
        raise ValueError("no recorded positions: solve with record_every=k to draw the convergence")
    final = np.asarray(result.X, np.float64)
    reference = final - final.mean(axis=0) if target is None else np.asarray(target, np.float64)
    frames = [(iteration, stress, onto(reference, X)) for iteration, stress, X
              in zip(result.history_iterations, result.history_stress, result.history_X)]
    return reference, frames


def _limits(reference, final):
    """Axis limits that frame the reference and the final positions (padded by 5 % of the larger
    span): the pictures show the shape, and early positions outside it are cut off."""
    points = np.vstack([reference, final])
    low, high = points.min(axis=0), points.max(axis=0)
    pad = 0.05 * float(np.max(high - low) or 1.0)
    return list(zip(low - pad, high + pad))


def _title(target, result):
    title = f"{result.backend}: N={result.X.shape[0]}, dim={result.X.shape[1]}, {result.niter} iterations"
    if target is None:
        return title
    return f"{title}, Procrustes disparity {procrustes_disparity(target, result.X):.2g} (0 = same shape)"


def _recovered_label(target):
    return "recovered, centred" if target is None else "recovered, moved rigidly onto the target"


def _positions_axes(figure, dim, where, limits):
    """Axes for positions: labelled, fixed limits, one unit the same length on every axis."""
    from matplotlib.ticker import MaxNLocator

    if dim == 3:
        ax = figure.add_subplot(where, projection="3d")
        ax.set_box_aspect([high - low for low, high in limits])
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):  # fewer ticks: 3-D tick labels crowd each other
            axis.set_major_locator(MaxNLocator(4, steps=[1, 2, 5, 10]))
    else:
        ax = figure.add_subplot(where)
        ax.set_aspect("equal")
    for axis, (low, high) in zip("xyz", limits):
        getattr(ax, f"set_{axis}lim")(low, high)
        getattr(ax, f"set_{axis}label")(axis)
    return ax


def _draw_positions(ax, reference, target):
    """Draw the target (if any) and a legend below the axes; returns a function that draws
    (replaces) the recovered positions."""
    if target is not None:
        ax.scatter(*reference.T, s=40, facecolors="none", edgecolors="grey", label="target")
    drawn = []

    def show(X):
        if drawn:
            drawn.pop().remove()
        drawn.append(ax.scatter(*X.T, s=12, color="C0", label=_recovered_label(target)))
        if ax.get_legend() is None:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), borderaxespad=4, ncol=2,
                      fontsize="small", frameon=False)  # below the axes and their labels
    return show


def plot_figure(target, result):
    """The figure ``save_plot`` writes: final positions (over the target) and the stress curve."""
    require("matplotlib", "plots", "--plot")
    from matplotlib.figure import Figure

    reference, frames = _frames(target, result)
    figure = Figure(figsize=(12, 5.2), layout="constrained")
    ax = _positions_axes(figure, result.X.shape[1], 121, _limits(reference, frames[-1][2]))
    _draw_positions(ax, reference, target)(frames[-1][2])
    ax.set_title("final positions" + (" (centred)" if target is None else " over the target, in its units"))
    curve = figure.add_subplot(122)
    iterations = np.array(result.history_iterations)
    stress = np.array(result.history_stress)
    positive = stress > 0
    curve.semilogy(iterations[positive], stress[positive], marker=".")
    curve.set_xlabel("iteration")
    curve.set_ylabel("stress S(X)")
    curve.set_title("stress (log scale)")
    curve.grid(which="both", alpha=0.3)
    figure.suptitle(_title(target, result))
    return figure


def save_plot(target, result, path):
    """Image (format from the extension, PNG without one): final positions and the stress curve.

    ``target`` (N x dim) is drawn under the positions; None draws the positions alone.
    """
    image_format = plot_format(path)
    plot_figure(target, result).savefig(path, dpi=100, format=image_format)


def _gif_figure(limits, dim):
    """A figure whose drawing area has the shape's proportions (no empty bands), with room for
    the title above and the axis labels and legend below. A fixed layout: re-running a layout
    engine on every frame is slow."""
    from matplotlib.figure import Figure

    if dim == 2:
        (x_low, x_high), (y_low, y_high) = limits
        tall = float(np.clip((y_high - y_low) / (x_high - x_low), 0.25, 4.0))  # height per unit width
        width, height = (GIF_INCHES, GIF_INCHES * tall) if tall <= 1 else (GIF_INCHES / tall, GIF_INCHES)
    else:
        width = height = GIF_INCHES
    left, right, bottom, top = 0.8, 0.25, 0.9, 0.5  # inches around the drawing area
    total_width, total_height = width + left + right, height + bottom + top
    figure = Figure(figsize=(total_width, total_height), dpi=GIF_DPI)
    figure.subplots_adjust(left=left / total_width, right=1 - right / total_width,
                           bottom=bottom / total_height, top=1 - top / total_height)
    return figure


def save_animation(target, result, path):
    """GIF: the recorded positions converging onto the target (3-D views turn slowly)."""
    require("matplotlib", "plots", "--animate")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    reference, frames = _frames(target, result)
    dim = result.X.shape[1]
    limits = _limits(reference, frames[-1][2])
    figure = _gif_figure(limits, dim)
    ax = _positions_axes(figure, dim, 111, limits)
    show = _draw_positions(ax, reference, target)
    hold_last = [frames[-1]] * (FPS // 2)  # linger on the result before the GIF loops
    canvas, images = FigureCanvasAgg(figure), []
    for k, (iteration, stress, X) in enumerate(frames + hold_last):
        show(X)
        if dim == 3:
            ax.view_init(elev=20, azim=-60 + 2 * k)
        ax.set_title(f"{result.backend}, iteration {iteration}/{result.niter}, stress {stress:.3g}")
        canvas.draw()
        images.append(Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB"))
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(1000 / FPS), loop=0)


def html_figure(target, result):
    """The plotly figure ``save_html`` writes: one frame per recorded iteration, each titled with
    its iteration and stress; the Procrustes disparity, which belongs to the final positions, is
    in the final frame's title only."""
    go = require("plotly.graph_objects", "html", "--html")

    reference, frames = _frames(target, result)
    limits = _limits(reference, frames[-1][2])
    dim = result.X.shape[1]
    scatter = go.Scatter3d if dim == 3 else go.Scatter
    marker = {"size": 3 if dim == 3 else 6}

    def traces(X):
        shown = [scatter(**dict(zip("xyz", X.T)), mode="markers", name=_recovered_label(target),
                         marker={**marker, "color": "#1f77b4"})]
        if target is None:
            return shown
        return [scatter(**dict(zip("xyz", reference.T)), mode="markers", name="target",
                        marker={**marker, "color": "lightgrey"})] + shown

    def title(iteration, stress):
        text = (f"{result.backend}: N={result.X.shape[0]}, iteration {iteration}/{result.niter}, "
                f"stress {stress:.3g}")
        if iteration == frames[-1][0] and target is not None:
            text += f", Procrustes disparity {procrustes_disparity(target, result.X):.2g}"
        return {"text": text}

    steps = [{"label": str(iteration), "method": "animate",
              "args": [[str(iteration)], {"mode": "immediate", "frame": {"duration": 0, "redraw": True}}]}
             for iteration, _, _ in frames]
    figure = go.Figure(
        data=traces(frames[-1][2]),
        frames=[go.Frame(data=traces(X), name=str(iteration), layout={"title": title(iteration, stress)})
                for iteration, stress, X in frames],
    )
    axes = {f"{axis}axis": {"range": list(limit), "title": {"text": axis}}
            for axis, limit in zip("xyz", limits)}
    if dim == 3:
        figure.update_layout(scene={**axes, "aspectmode": "data"})
    else:
        figure.update_layout(**axes, yaxis_scaleanchor="x")
    figure.update_layout(
        title=title(*frames[-1][:2]),
        sliders=[{"active": len(frames) - 1, "steps": steps, "currentvalue": {"prefix": "iteration "}}],
        updatemenus=[{"type": "buttons", "buttons": [{
            "label": "play", "method": "animate",
            "args": [None, {"frame": {"duration": 80, "redraw": True}, "fromcurrent": False}]}]}],
    )
    return figure


def save_html(target, result, path):
    """Self-contained interactive HTML (plotly): rotate and zoom, scrub through the iterations."""
    html_figure(target, result).write_html(path, include_plotlyjs=True)
