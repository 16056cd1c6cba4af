"""Pictures of one solve: a PNG (final shape + stress curve), a GIF of the drones converging, an
interactive HTML page (plotly).

Every frame shows the recorded positions after Procrustes alignment onto the target (rotation,
reflection, translation and scale removed, see gradi.align), so what moves is the shape itself,
not its arbitrary placement. The positions come from ``solve(..., record_every=k)``;
``record_every_for(niter)`` picks k for about ``FRAMES`` frames. Drawing uses matplotlib's
non-interactive Agg canvas, so no display is needed.
"""

import importlib

import numpy as np

from .align import aligned, procrustes_disparity

FRAMES = 60
FPS = 12


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


def _frames(target, result):
    """(standardised target, [(iteration, stress, aligned positions)]) of a recorded result."""
    if not result.history_X:
        raise ValueError("no recorded positions: solve with record_every=k to draw the convergence")
    standard_target, _ = aligned(target, result.X)
    frames = [(iteration, stress, aligned(target, X)[1]) for iteration, stress, X
              in zip(result.history_iterations, result.history_stress, result.history_X)]
    return standard_target, frames


def _limits(standard_target, frames):
    points = np.vstack([standard_target] + [X for _, _, X in frames])
    low, high = points.min(axis=0), points.max(axis=0)
    pad = 0.05 * float(np.max(high - low) or 1.0)
    return list(zip(low - pad, high + pad))


def _title(target, result):
    return (f"{result.backend}: N={target.shape[0]}, dim={target.shape[1]}, {result.niter} iterations, "
            f"Procrustes disparity {procrustes_disparity(target, result.X):.2g}")


def _positions_axes(figure, dim, where):
    if dim == 3:
        return figure.add_subplot(where, projection="3d")
    ax = figure.add_subplot(where)
    ax.set_aspect("equal")
    return ax


def _draw_positions(ax, standard_target, limits):
    """Draw the target and fix the axes; returns a function that draws (replaces) the positions."""
    ax.scatter(*standard_target.T, s=40, facecolors="none", edgecolors="grey", label="target")
    for axis, (low, high) in zip("xyz", limits):
        getattr(ax, f"set_{axis}lim")(low, high)
    drawn = []

    def show(X):
        if drawn:
            drawn.pop().remove()
        drawn.append(ax.scatter(*X.T, s=12, color="C0", label="recovered (aligned)"))
        if len(ax.get_legend_handles_labels()[0]) == 2 and ax.get_legend() is None:
            ax.legend(loc="upper right", fontsize="small")
    return show


def save_plot(target, result, path):
    """PNG: final positions over the target (aligned), and the stress curve on a log scale."""
    require("matplotlib", "plots", "--plot")
    from matplotlib.figure import Figure

    standard_target, frames = _frames(target, result)
    figure = Figure(figsize=(12, 5.2), layout="constrained")
    ax = _positions_axes(figure, target.shape[1], 121)
    _draw_positions(ax, standard_target, _limits(standard_target, frames[-1:]))(frames[-1][2])
    ax.set_title("final positions")
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
    figure.savefig(path, dpi=100)


def save_animation(target, result, path):
    """GIF: the recorded positions converging onto the target (3-D views turn slowly)."""
    require("matplotlib", "plots", "--animate")
    from matplotlib.animation import PillowWriter
    from matplotlib.figure import Figure

    standard_target, frames = _frames(target, result)
    dim = target.shape[1]
    figure = Figure(figsize=(6, 6))  # a fixed layout: re-running a layout engine per frame is slow
    figure.subplots_adjust(left=0.1, right=0.95, bottom=0.08, top=0.92)
    ax = _positions_axes(figure, dim, 111)
    show = _draw_positions(ax, standard_target, _limits(standard_target, frames))
    hold_last = [frames[-1]] * (FPS // 2)  # linger on the result before the GIF loops
    writer = PillowWriter(fps=FPS)
    with writer.saving(figure, path, dpi=80):
        for k, (iteration, stress, X) in enumerate(frames + hold_last):
            show(X)
            if dim == 3:
                ax.view_init(elev=20, azim=-60 + 2 * k)
            ax.set_title(f"{result.backend}, iteration {iteration}/{result.niter}, stress {stress:.3g}")
            writer.grab_frame()


def save_html(target, result, path):
    """Self-contained interactive HTML (plotly): rotate and zoom, scrub through the iterations."""
    go = require("plotly.graph_objects", "html", "--html")

    standard_target, frames = _frames(target, result)
    limits = _limits(standard_target, frames)
    dim = target.shape[1]

    def traces(X):
        scatter = go.Scatter3d if dim == 3 else go.Scatter
        marker = {"size": 3 if dim == 3 else 6}
        return [scatter(**dict(zip("xyz", standard_target.T)), mode="markers", name="target",
                        marker={**marker, "color": "lightgrey"}),
                scatter(**dict(zip("xyz", X.T)), mode="markers", name="recovered (aligned)",
                        marker={**marker, "color": "#1f77b4"})]

    steps = [{"label": str(iteration), "method": "animate",
              "args": [[str(iteration)], {"mode": "immediate", "frame": {"duration": 0, "redraw": True}}]}
             for iteration, _, _ in frames]
    figure = go.Figure(
        data=traces(frames[-1][2]),
        frames=[go.Frame(data=traces(X), name=str(iteration)) for iteration, _, X in frames],
    )
    axes = {f"{axis}axis": {"range": list(limit)} for axis, limit in zip("xyz", limits)}
    if dim == 3:
        figure.update_layout(scene={**axes, "aspectmode": "cube"})
    else:
        figure.update_layout(**axes, yaxis_scaleanchor="x")
    figure.update_layout(
        title=_title(target, result),
        sliders=[{"active": len(frames) - 1, "steps": steps, "currentvalue": {"prefix": "iteration "}}],
        updatemenus=[{"type": "buttons", "buttons": [{
            "label": "play", "method": "animate",
            "args": [None, {"frame": {"duration": 80, "redraw": True}, "fromcurrent": False}]}]}],
    )
    figure.write_html(path, include_plotlyjs=True)
