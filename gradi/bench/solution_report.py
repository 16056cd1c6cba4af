"""Results of ``gradi bench --to-solution``: a terminal table, JSON and a figure.

Speed-ups are a peer's seconds (SMACOF's, s_gd2's) over each solver's, for the same case and
target, where both reached it; above 1 the solver reached the target sooner than that peer.
"""

import json

from ..columns import aligned
from .machine import describe
from .solution import PEERS

FIGSIZE = (11.0, 5.0)
DPI = 100


def speedups(outcomes, peer):
    """{(solver, n, dim): ``peer``'s seconds / solver seconds} where both reached the target."""
    reached = {(o.n, o.dim): o.seconds for o in outcomes if o.solver == peer and o.status == "ok"}
    return {(o.solver, o.n, o.dim): reached[o.n, o.dim] / o.seconds for o in outcomes
            if o.status == "ok" and (o.n, o.dim) in reached and o.seconds > 0}


def format_table(outcomes, settings):
    """The table of solvers that reached the target, then those that did not and why."""
    ratios = {peer: speedups(outcomes, peer) for peer in PEERS}
    header = ["solver", "N", "dim", "threads", "iterations", "seconds", *(f"x {peer}" for peer in PEERS),
              "disparity", "stress"]
    body = [[o.solver, str(o.n), str(o.dim), str(o.threads), str(o.iterations), f"{o.seconds:.4g}",
             *(_optional(ratios[peer].get((o.solver, o.n, o.dim)), ".3g") for peer in PEERS),
             f"{o.disparity:.2e}", f"{o.stress:.3e}"]
            for o in outcomes if o.status == "ok"]
    lines = aligned([header, *body], right=range(1, len(header)))
    shape = f"the {settings.shape} shape" if settings.shape else "the sweep's shapes (circle 2-D, sphere 3-D)"
    lines.append(f"target: Procrustes disparity <= {settings.target:g} on {shape} from gradi's seeded start, "
                 f"seconds the best of at least {settings.repeats} runs over at least {settings.window:g} s; "
                 f"gradi: gradi.solve in {settings.dtype}, stopped by tol={settings.tol:g} (whole call); "
                 f"smacof: float64, exactly the iterations the target needs; s_gd2: float64, its defaults")
    lines += [f"{o.status}: {o.solver} N={o.n} dim={o.dim}: {o.reason}" for o in outcomes if o.status != "ok"]
    return "\n".join(lines)


def write_results(out_dir, outcomes, settings, text, command):
    """Write to-solution.txt, to-solution.json and (with matplotlib) to-solution.png; their paths."""
    paths = [out_dir / "to-solution.txt", out_dir / "to-solution.json"]
    paths[0].write_text(text + "\n")
    ratios = {peer: speedups(outcomes, peer) for peer in PEERS}
    document = {
        "format": "gradi-to-solution/1",
        "command": list(command),
        "settings": {**vars(settings), "backends": list(settings.backends),
                     "sizes": list(settings.sizes), "dims": list(settings.dims), "tol": settings.tol},
        "machine": describe(),
        "results": [{**vars(o), **{f"speedup_vs_{peer}": ratios[peer].get((o.solver, o.n, o.dim)) for peer in PEERS}}
                    for o in outcomes],
    }
    paths[1].write_text(json.dumps(document, indent=1) + "\n")
    try:
        paths.append(save_figure(outcomes, settings, out_dir / "to-solution.png"))
    except ImportError:
        pass  # matplotlib is optional: the table and JSON carry everything
    return paths


def save_figure(outcomes, settings, path):
    """Seconds to the target per solver (log scale), one group of bars per case."""
    from matplotlib.figure import Figure

    reached = [o for o in outcomes if o.status == "ok"]
    cases = sorted({(o.dim, o.n) for o in outcomes})
    solvers = list(dict.fromkeys(o.solver for o in outcomes))
    figure = Figure(figsize=FIGSIZE, layout="constrained")
    axes = figure.subplots()
    width = 0.8 / max(len(solvers), 1)
    palette = _palette(len(solvers))
    for k, solver in enumerate(solvers):
        xs, ys = [], []
        for c, (dim, n) in enumerate(cases):
            match = [o for o in reached if o.solver == solver and (o.dim, o.n) == (dim, n)]
            if match:
                xs.append(c + (k - (len(solvers) - 1) / 2) * width)
                ys.append(match[0].seconds)
        axes.bar(xs, ys, width=width, label=solver, color=palette[k],
                 edgecolor="black" if solver in PEERS else "none", linewidth=1.2)
    axes.set_yscale("log")
    axes.set_xticks(range(len(cases)), [f"N={n}, dim {dim}" for dim, n in cases])
    axes.set_ylabel(f"seconds to Procrustes disparity <= {settings.target:g} (log)")
    axes.set_title("Time to solution: gradi's backends (lr='auto', tol) against SMACOF and s_gd2")
    axes.legend(ncols=4, fontsize="small", loc="upper left", bbox_to_anchor=(0, -0.08))
    axes.grid(axis="y", which="both", alpha=0.3)
    figure.savefig(path, dpi=DPI)
    return path


def _palette(count):
    from matplotlib import colormaps

    colours = colormaps["tab20"].colors
    return [colours[k % len(colours)] for k in range(count)]


def _optional(value, spec):
    return "-" if value is None else format(value, spec)
