"""The blog's two charts for ``gradi bench``: time per backend for growing N, log and linear.

One subplot per dim, problem sizes on the x axis, one bar per backend (a hue per language, the
same colours in both charts); bars whose time was scaled from fewer iterations are hatched. The
linear chart leaves out the slow tiers (``SLOW_TIERS``), which would flatten every other bar to
nothing. Figures are drawn on matplotlib's non-interactive Agg canvas (no pyplot state, no
display needed).
"""

import numpy as np

SLOW_TIERS = ("python", "numpy-loops")
FIGSIZE = (13.0, 5.5)
DPI = 100
FIGURE_PIXELS = (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))
LANGUAGE_COLOURS = {"Python": "Greys", "NumPy": "Blues", "JAX": "Greens", "C++": "Oranges",
                    "Mojo": "Purples"}


def save_bench_figures(table, out_dir):
    """Draw the log-scale and linear-scale charts of the ``ok`` rows; returns their paths."""
    measured = [row for row in table if row["status"] == "ok"]
    paths = []
    fast = [row for row in measured if row["backend"] not in SLOW_TIERS]
    for scale, rows in (("log", measured), ("linear", fast)):
        path = out_dir / f"bench-{scale}.png"
        _chart(rows, scale, _colours(table)).savefig(path, dpi=DPI)
        paths.append(path)
    return paths


def _colours(table):
    """A hue per language (``LANGUAGE_COLOURS``), a distinct shade per backend within it."""
    from matplotlib import colormaps

    languages = {}
    for row in table:
        languages.setdefault(row["language"], {})[row["backend"]] = None
    colours = {}
    for language, names in languages.items():
        palette = colormaps[LANGUAGE_COLOURS.get(language, "Reds")]
        shades = np.linspace(0.85, 0.45, len(names)) if len(names) > 1 else [0.7]
        colours.update({name: palette(shade) for name, shade in zip(names, shades)})
    return colours


def _contrast(colour):
    """White on dark colours, dark grey on light ones: for hatches that stay visible."""
    red, green, blue = colour[:3]
    return "white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.5 else "#444444"


def _chart(rows, scale, colours):
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    dims = sorted({row["dim"] for row in rows}) or [None]
    figure = Figure(figsize=FIGSIZE, layout="constrained")
    axes = figure.subplots(1, len(dims), squeeze=False)[0]
    names = [name for name in colours if any(row["backend"] == name for row in rows)]
    for ax, dim in zip(axes, dims):
        here = [row for row in rows if row["dim"] == dim]
        sizes = sorted({row["n"] for row in here})
        width = 0.8 / max(len(names), 1)
        for k, name in enumerate(names):
            bars = {row["n"]: row for row in here if row["backend"] == name}
            xs = [i + (k - (len(names) - 1) / 2) * width for i, n in enumerate(sizes) if n in bars]
            values = [bars[n]["seconds"] for n in sizes if n in bars]
            hatches = ["//" if bars[n]["scaled"] else "" for n in sizes if n in bars]
            for x, value, hatch in zip(xs, values, hatches):
                ax.bar(x, value, width, color=colours[name], hatch=hatch, linewidth=0.3,
                       edgecolor=_contrast(colours[name]))
        ax.set_xticks(np.arange(len(sizes)), [f"N={n}" for n in sizes])
        ax.set_yscale(scale)
        ax.set_title(f"dim = {dim}" if dim is not None else "no measurements")
        ax.grid(axis="y", which="both" if scale == "log" else "major", alpha=0.3)
        if rows:
            ax.set_ylabel(f"seconds for {rows[0]['niter']} iterations ({scale} scale)")
    handles = [Patch(color=colours[name], label=name) for name in names]
    if any(row["scaled"] for row in rows):
        handles.append(Patch(facecolor="grey", hatch="//", edgecolor="white",
                             label="scaled from fewer iterations"))
    figure.legend(handles=handles, loc="outside right upper", fontsize="small")
    left_out = " (python and numpy-loops left out)" if scale == "linear" else ""
    dtype = rows[0]["dtype"] if rows else ""
    figure.suptitle(f"gradi bench: time per backend, {dtype}, lower is better{left_out}")
    return figure
