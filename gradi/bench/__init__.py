"""The benchmarking application on top of the solver core: ``gradi bench`` and what it reports.

``sweep`` times backends over problem sizes, ``report`` turns a sweep into tables and files,
``plots`` draws its figures, ``machine`` describes what it ran on, ``sourcelines`` counts each
backend's code. The solver core (gradi.problem, validation, solver, backends) never imports it.
"""
