"""Shared test configuration: report which gradi is under test and which backends can run."""

import gradi


def pytest_report_header(config):
    available = gradi.backends.available()
    missing = {name: backend.unavailable_reason for name, backend in gradi.backends.BACKENDS.items()
               if name not in available}
    lines = [f"gradi under test: {gradi.__file__}", f"backends available: {', '.join(available)}"]
    lines += [f"backend unavailable: {name}: {reason}" for name, reason in missing.items()]
    return lines
