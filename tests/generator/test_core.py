"""The ML/QR core must import and work without Django (house style rule 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_core_imports_and_runs_without_django():
    script = (
        "import sys\n"
        "sys.modules['django'] = None  # any 'import django' now fails\n"
        "from generator import aesthetics, alignment, captures, decoders, images, pipeline, qr, ranking, repair, scan\n"
        "from generator import grid, halftone, plots, report, restamp, synthetic, tiny\n"
        "code = qr.encode('no django here')\n"
        "result = scan.verify(qr.render_control_image(code, 400), code.content, captures_count=1)\n"
        "assert result.verdict == 'pass', result\n"
        "grid = repair.grid_from_control(qr.render_control_image(code, 300))\n"
        "assert (grid.matrix == code.matrix).all()\n"
        "assert alignment.align([0.9, 0.1], [True, False]).accuracy == 1.0\n"
        "print('ok')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
