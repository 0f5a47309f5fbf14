"""The shipped examples hold under any time scale, as the README promises.

CI runs ``pytest examples/`` at full length (README's main job); a user who compresses time with
``--ingress-time-scale`` runs the same files, so what they assert must hold there too (an
absolute request count did not: issue 15, item 10).
"""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_examples_pass_under_a_compressed_time_scale(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLES), "-p", "no:cacheprovider", "-n", "0",
         "--ingress-time-scale", "0.2", f"--ingress-report-dir={tmp_path}", "-q"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    tail = run.stdout[-3000:]
    assert run.returncode == 0, tail
    assert "5 passed, 1 xfailed" in tail, tail
