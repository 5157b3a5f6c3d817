"""A real torch axis, from the CPU wheel of the folder that ``PIP_FIND_LINKS`` names.

PyPI publishes torch 2.13.0 too, as a CUDA build that pulls in gigabytes of
nvidia packages. ``torch==2.13.0`` matches both that and the folder's
``2.13.0+cpu``; which one a resolver takes when it sees both is its own
business. So torch gets the folder as its own index
(``--envmatrix-package-index``): uv then takes torch from there or fails,
and takes torch's dependencies (filelock, sympy, networkx, ...) from PyPI.
uv does not read ``PIP_FIND_LINKS``: the folder is named to it here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_envmatrix.installer import find_uv

TORCH_VERSION = "2.13.0"


def torch_wheels() -> Path | None:
    for entry in os.environ.get("PIP_FIND_LINKS", "").split():
        folder = Path(entry)
        if folder.is_dir() and any(folder.glob(f"torch-{TORCH_VERSION}+cpu-cp311-*.whl")):
            return folder
    return None


TORCH_WHEELS = torch_wheels()  # read before hermetic_installer takes PIP_FIND_LINKS away


@pytest.mark.network
@pytest.mark.skipif(find_uv() is None, reason="a package index of its own is uv's; uv is not installed")
@pytest.mark.skipif(
    TORCH_WHEELS is None,
    reason=f"no folder in PIP_FIND_LINKS holds torch-{TORCH_VERSION}+cpu for CPython 3.11",
)
def test_a_torch_axis_imports_the_cpu_wheel_and_computes(pytester, tmp_path, hermetic_installer):
    folder = TORCH_WHEELS
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.envmatrix(python=["3.11"], torch=["{TORCH_VERSION}"])
        def test_torch():
            import torch

            assert torch.__version__ == "{TORCH_VERSION}+cpu"
            assert not torch.cuda.is_available()
            a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
            assert torch.equal(a @ a, torch.tensor([[7.0, 10.0], [15.0, 22.0]]))
    """)
    options = [
        "--envmatrix", f"--envmatrix-cache-dir={tmp_path / 'cache'}",
        f"--envmatrix-find-links={folder}", f"--envmatrix-package-index=torch={folder}",
        # torch's 0.7 GB linked from uv's cache rather than copied: quicker, and each kept basetemp costs no copy
        "--envmatrix-shared-package=torch",
    ]
    result = pytester.runpytest_subprocess(*options, "-v", timeout=600)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "envmatrix: installer uv (link mode copy; torch shared with uv's cache), cache *",
        f"*test_torch[[]py3.11-torch-{TORCH_VERSION}[]] PASSED*",
    ])

    listed = pytester.runpytest_subprocess(*options, "--envmatrix-list", timeout=120)
    listed.stdout.fnmatch_lines(["*cached*torch==2.13.0*", "*on disk: * MB (hard links counted once), * of it shared with uv's cache or other environments"])
