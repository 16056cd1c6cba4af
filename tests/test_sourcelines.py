"""Source lines of each backend are counted from an installed gradi too, not only from the clone."""

import json
import subprocess
import sys


def test_an_installed_gradi_counts_every_backends_lines_outside_the_clone(tmp_path):
    code = ("import json, gradi; from gradi.bench.sourcelines import count_backend_lines; "
            "print(json.dumps({n: count_backend_lines(b.sources) for n, b in gradi.backends.BACKENDS.items()}))")
    done = subprocess.run([sys.executable, "-P", "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=True)
    counts = json.loads(done.stdout)
    missing = [name for name, lines in counts.items() if not lines]
    assert not missing, f"no line count for {missing} from {tmp_path}"
