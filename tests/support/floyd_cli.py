"""The unmodified floyd-cli 0.11.17 from PyPI, in a virtual environment of its own.

Its pins (click<7, marshmallow<3) cannot live beside Ferry's packages, and on a fresh install it
fails at import unless urllib3 is below 2 (its requests-toolbelt wants urllib3's old
``appengine`` module). The environment is made once per checkout under var/test-tools/, or
taken from FERRY_TEST_FLOYD_VENV.
"""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VERSION = "0.11.17"
REQUIREMENTS = (f"floyd-cli=={VERSION}", "urllib3<2")


class FloydUnavailable(RuntimeError):
    pass


def floyd_venv() -> Path:
    """The environment's directory, made if missing; FloydUnavailable if it cannot be."""
    given = os.environ.get("FERRY_TEST_FLOYD_VENV")
    venv = Path(given) if given else REPO / "var" / "test-tools" / f"floyd-cli-{VERSION}"
    if (venv / "bin" / "floyd").exists():
        return venv
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, *REQUIREMENTS], check=True, capture_output=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as failed:
        output = getattr(failed, "stderr", b"") or b""
        raise FloydUnavailable(
            f"pip could not install {REQUIREMENTS}: {output[-2000:]!r}"
        ) from failed
    return venv


if __name__ == "__main__":
    print(floyd_venv())
