"""The figures of ``gradi bench``: time per backend (log scale, and linear per N) and the roofline.

- ``bench-log.png``: one panel per dim, problem sizes on the x axis, one bar per backend;
- ``bench-linear.png``: one panel per N (each with its own linear y scale, so N=10 is as
  readable as N=1000), bars grouped by dim; the slow tiers (``SLOW_TIERS``) are left out;
- ``bench-roofline.png``: pair-updates per second against N (log-log), one line per backend,
  with this machine's ceilings drawn (``gradi.bench.roofline``): the op-mix ceilings of the
  schemes and ISAs the backends ran, the FMA-only hardware peak, and both memory ceilings from
  the N where the measured cache no longer holds what the scheme stores of D².

Colours: a hue per language family, a shade per tier within it (lightest the blog's serial
seed, darkest the tuned or idiomatic), the same in every figure. Bars whose time was scaled from
fewer iterations are hatched; a backend that did not run a case leaves a labelled gap saying
why (skipped, over budget, excluded...). Figures are drawn on matplotlib's Agg canvas (no
pyplot state, no display needed).
"""

import numpy as np

from . import roofline

SLOW_TIERS = ("python", "numpy-loops")
FIGSIZE = (13.0, 5.5)
DPI = 100
FIGURE_PIXELS = (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))
# Colour maps and shades chosen so that the eleven backends stay at least 30 apart in CIELAB
# (delta E 1976; tests/test_bench.py checks it), and still 31 apart with a third JAX backend:
# hues far apart, well-separated shades, none too pale to see on white.
LANGUAGE_COLOURS = {"Python": "Greys", "NumPy": "Blues", "JAX": "Greens", "C++": "YlOrBr",
                    "Mojo": "RdPu"}
SHADES = {1: [0.65], 2: [0.5, 0.9], 3: [0.35, 0.65, 0.95]}
TIER_ORDER = {"seed": 0, "idiomatic": 1, "tuned": 2}
TIER_MARKERS = {"seed": "o", "idiomatic": "s", "tuned": "D"}
MEMORY_COLOUR = "#b35806"


def save_bench_figures(table, out_dir):
    """Draw the log, linear and roofline figures of a sweep's rows; returns their paths."""
    colours = colours_of(table)
    hardware = roofline.measured_for(table)[0]
    figures = {"log": _log_chart(table, colours),
               "linear": _linear_chart([row for row in table if row["backend"] not in SLOW_TIERS], colours),
               "roofline": _roofline_chart(table, colours, hardware)}
    paths = []
    for name, figure in figures.items():
        path = out_dir / f"bench-{name}.png"
        figure.savefig(path, dpi=DPI)
        paths.append(path)
    return paths


def colours_of(table):
    """A hue per language (``LANGUAGE_COLOURS``), well-separated shades by tier within it."""
    from matplotlib import colormaps

    families = {}
    for row in table:
        families.setdefault(row["language"], {})[row["backend"]] = (TIER_ORDER.get(row["tier"], 1),
                                                                     row["parallel"])
    colours = {}
    for language, members in families.items():
        palette = colormaps[LANGUAGE_COLOURS.get(language, "Reds")]
        names = sorted(members, key=lambda name: members[name])
        shades = SHADES.get(len(names), np.linspace(0.35, 0.95, len(names)))
        colours.update({name: palette(shade) for name, shade in zip(names, shades)})
    return colours


def _contrast(colour):
    """White on dark colours, near-black on light ones: for hatches and labels that stay visible."""
    red, green, blue = colour[:3]
    return "white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.45 else "#222222"


def _gap_label(row):
    """A word or two on why a backend has no bar for a case."""
    reason = row["reason"].lower()
    if row["status"] == "skipped":
        for words, label in (("budget", "over budget"), ("unavailable", "unavailable"),
                             ("too large", "too large"), ("memory", "too large"),
                             ("one thread", "serial only"), ("dtype", "no such dtype")):
            if words in reason:
                return label
    return row["status"]


def _bars(ax, rows, names, colours, groups, key, values=False):
    """One bar per backend (``names``) in each group (``groups``, the values of ``key``);
    scaled bars hatched, gaps labelled, and each bar's time written above it if ``values``."""
    from matplotlib.transforms import blended_transform_factory

    width = 0.84 / max(len(names), 1)
    below = blended_transform_factory(ax.transData, ax.transAxes)
    for k, name in enumerate(names):
        cells = {row[key]: row for row in rows if row["backend"] == name}
        for i, group in enumerate(groups):
            row = cells.get(group)
            if row is None:
                continue
            x = i + (k - (len(names) - 1) / 2) * width
            if row["status"] == "ok":
                ax.bar(x, row["seconds"], width, color=colours[name], linewidth=0.4,
                       hatch="////" if row["scaled"] else "", edgecolor=_contrast(colours[name]))
                if values:
                    ax.text(x, row["seconds"], " " + _duration(row["seconds"]), rotation=90,
                            ha="center", va="bottom", fontsize=6.5, color="#222222")
            else:
                ax.text(x, 0.015, _gap_label(row), transform=below, rotation=90, ha="center",
                        va="bottom", fontsize=6.5, color=_contrast(colours[name]),
                        bbox={"facecolor": colours[name], "edgecolor": "none", "pad": 1.2})
    ax.set_xticks(np.arange(len(groups)))
    ax.yaxis.set_major_formatter(_seconds_formatter())


def _duration(seconds):
    """Three significant digits in the unit that fits: '24.1 ms', '594 µs'."""
    for scale, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _seconds_formatter():
    from matplotlib.ticker import EngFormatter

    return EngFormatter(unit="s", sep=" ")


def _legend(figure, rows, names, colours):
    from matplotlib.patches import Patch

    tier = {row["backend"]: row["tier"] for row in rows}
    handles = [Patch(color=colours[name], label=f"{name} ({tier[name]})") for name in names]
    if any(row["scaled"] for row in rows):
        handles.append(Patch(facecolor="#bbbbbb", hatch="////", edgecolor="#222222",
                             label="scaled from fewer iterations"))
    if any(row["status"] != "ok" for row in rows):
        handles.append(Patch(facecolor="none", edgecolor="none",
                             label="no bar: the word says why\n(details in table.txt)"))
    figure.legend(handles=handles, loc="outside right center", fontsize="small")


def _niter(rows):
    return rows[0]["niter"] if rows else ""


def _log_chart(table, colours):
    from matplotlib.figure import Figure

    dims = sorted({row["dim"] for row in table}) or [None]
    names = [name for name in colours if any(row["backend"] == name for row in table)]
    figure = Figure(figsize=FIGSIZE, layout="constrained")
    for ax, dim in zip(figure.subplots(1, len(dims), squeeze=False)[0], dims):
        here = [row for row in table if row["dim"] == dim]
        sizes = sorted({row["n"] for row in here})
        ax.set_yscale("log")
        _bars(ax, here, names, colours, sizes, "n")
        ax.set_xticklabels([f"N={n}" for n in sizes])
        ax.set_title(f"dim = {dim}" if dim is not None else "no measurements")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.set_ylabel(f"time for {_niter(table)} iterations (log scale)")
    _legend(figure, table, names, colours)
    dtype = table[0]["dtype"] if table else ""
    figure.suptitle(f"gradi bench: time per backend, {dtype}, lower is better")
    return figure


def _linear_chart(table, colours):
    from matplotlib.figure import Figure

    sizes = sorted({row["n"] for row in table}) or [None]
    dims = sorted({row["dim"] for row in table})
    names = [name for name in colours if any(row["backend"] == name for row in table)]
    figure = Figure(figsize=FIGSIZE, layout="constrained")
    for ax, n in zip(figure.subplots(1, len(sizes), squeeze=False)[0], sizes):
        here = [row for row in table if row["n"] == n]
        _bars(ax, here, names, colours, dims, "dim", values=True)
        ax.margins(y=0.18)  # room for the values above the tallest bar
        ax.set_xticklabels([f"dim {dim}" for dim in dims])
        ax.set_title(f"N = {n}" if n is not None else "no measurements")
        ax.grid(axis="y", alpha=0.3)
    if table:
        figure.axes[0].set_ylabel(f"time for {_niter(table)} iterations (linear scale, own per N)")
        _legend(figure, table, names, colours)
    dtype = table[0]["dtype"] if table else ""
    figure.suptitle(f"gradi bench: time per backend, {dtype}, lower is better; linear scale, "
                    f"one per N ({', '.join(SLOW_TIERS)} left out)")
    return figure


def _roofline_chart(table, colours, hardware):
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    measured = [row for row in table if row["status"] == "ok"]
    dims = sorted({row["dim"] for row in measured}) or [None]
    names = [name for name in colours if any(row["backend"] == name for row in measured)]
    figure = Figure(figsize=FIGSIZE, layout="constrained")
    axes = figure.subplots(1, len(dims), squeeze=False, sharey=True)[0]
    cores = next((row["ceiling_cores"] for row in table if row["ceiling_cores"]), None)
    dtype = table[0]["dtype"] if table else "float32"
    ceilings = []
    for ax, dim in zip(axes, dims):
        here = [row for row in measured if row["dim"] == dim]
        for name in names:
            points = sorted((row["n"], row["pair_updates_per_second"], row["tier"])
                            for row in here if row["backend"] == name)
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], color=colours[name],
                        marker=TIER_MARKERS.get(points[0][2], "o"), linewidth=1.6, markersize=5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        if hardware is not None and cores and dim is not None:
            ceilings = _ceiling_lines(ax, hardware, dtype, dim, cores, _used(table))
        ax.set_title(f"dim = {dim}" if dim is not None else "no measurements")
        ax.set_xlabel("N (points)")
        ax.grid(which="both", alpha=0.25)
    axes[0].set_ylabel("pair-updates per second (N² per iteration), higher is better")
    tier = {row["backend"]: row["tier"] for row in measured}
    handles = [Line2D([], [], color=colours[name], marker=TIER_MARKERS.get(tier[name], "o"),
                      label=f"{name} ({tier[name]})") for name in names]
    if ceilings:
        handles += [Line2D([], [], color=colour, linestyle=style, label=label)
                    for label, colour, style in ceilings]
    figure.legend(handles=handles, loc="outside right center", fontsize="small")
    if hardware is None:
        where = f"ceilings not measured: {roofline.measured_for(table)[1]}"
    else:
        clock = f"at {hardware.cycle_hz / 1e9:.2f} GHz" if hardware.cycle_hz else "clock unknown"
        where = (f"ceilings of {cores} core{'s' if cores != 1 else ''} of this {hardware.cpu or 'CPU'}, "
                 f"{clock} (serial backends use one)")
    figure.suptitle(f"gradi bench: roofline, {dtype}; {where}")
    return figure


def _used(table):
    """(ISA, scheme) of every row with a ceiling, the tuned tier's first."""
    pairs = {(row["isa"], row["scheme"]) for row in table if row.get("isa")}
    return sorted(pairs, key=lambda pair: (pair[1] != "symmetric", pair))


def _ceiling_lines(ax, hardware, dtype, dim, cores, used):
    """Draw the op-mix ceilings of the (ISA, scheme) pairs ``used`` (every pair of the widest ISA
    if none), the FMA-only peak of the widest ISA, and the memory ceilings of both schemes (each
    from the N where what it stores of D² outgrows the measured cache); returns (label, colour,
    style) of each line for the legend."""
    widest = hardware.widest.isa
    lines = []
    for isa, scheme in used or [(widest, scheme) for scheme in reversed(roofline.SCHEMES)]:
        value = roofline.op_mix_ceiling(hardware, isa, dtype, dim, cores, scheme)
        if value is not None:
            lines.append((value, f"op-mix ceiling, {isa}, {roofline.SCHEME_WORDS[scheme]}", "black",
                          "-" if scheme == "symmetric" else "--"))
    lines.append((roofline.fma_ceiling(hardware, widest, dtype, dim, cores, "symmetric"),
                  f"FMA-only peak, {widest}, {roofline.SCHEME_WORDS['symmetric']}", "#999999", ":"))
    for value, _, colour, style in lines:
        ax.axhline(value, color=colour, linestyle=style, linewidth=1.2)
    left, right = ax.get_xlim()
    memory = {scheme: (roofline.memory_ceiling(hardware, dtype, cores, scheme),
                       roofline.cache_limit_n(hardware.cache_knee_bytes, dtype, scheme))
              for scheme in roofline.SCHEMES}
    right = max([right] + [1.6 * limit for _, limit in memory.values() if limit])
    # The triangle outgrows the cache at sqrt(2) times the N where all of D² does: each label
    # goes on the outer side of its line, so the two never print over each other.
    styles = {"full": ("-.", "all of D² streamed each step", "D² outgrows the \nmeasured cache ", "right"),
              "symmetric": ((0, (5, 2, 1, 2, 1, 2)), "one triangle of D² streamed each step",
                            " its triangle outgrows\n the measured cache", "left")}
    for scheme, (value, limit) in memory.items():
        style, _, words, side = styles[scheme]
        if limit:  # show where each memory ceiling starts to bind, even past the largest N measured
            ax.axvline(limit, color=MEMORY_COLOUR, linestyle=":", linewidth=0.9)
            ax.text(limit, 0.02, words, transform=ax.get_xaxis_transform(), fontsize=7,
                    color=MEMORY_COLOUR, va="bottom", ha=side)
        ax.plot([max(left, limit or left), right], [value, value], color=MEMORY_COLOUR, linestyle=style,
                linewidth=1.4)
    ax.set_xlim(left, right)
    return [(label, colour, style) for _, label, colour, style in lines] + [
        (f"memory ceiling, {styles[scheme][1]}", MEMORY_COLOUR, styles[scheme][0]) for scheme in memory]
