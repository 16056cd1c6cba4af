"""Shared test configuration: report which gradi is under test and what each backend's state is."""

import gradi


def pytest_report_header(config):
    lines = [f"gradi under test: {gradi.__file__}"]
    lines += [f"backend {name}: {backend.status()}" for name, backend in gradi.backends.BACKENDS.items()]
    return lines
