"""What a resolution imports of the AWS SDK (secrets_init/providers/trimmed_import.py).

Real `secrets-init -- true` runs against moto, with `-X importtime`, which the
forked child inherits: its imports are in the output too. The documentation
machinery and the package metadata must stay out of a resolution; and when
the trim cannot work (here: its stand-in fails while botocore imports), the
SDK is imported whole and the secrets still resolve.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testing.aws_proxy import AwsProxy
from testing.moto import Aws, aws_env
from testing.process import binary

# Imported by a plain `import botocore.session` (or boto3), never run by a resolution.
TRIMMED = (
    "boto3",
    "s3transfer",
    "botocore.docs.service",
    "botocore.docs.client",
    "botocore.docs.bcdoc.restdoc",
    "importlib.metadata",
)

# As if a botocore release used the docstring stand-in in a way it does not support.
BROKEN_TRIM = """
from secrets_init.providers import trimmed_import


def refuse(self, module):
    raise AttributeError("a stand-in this botocore does not expect")


trimmed_import._Docstrings.exec_module = refuse
"""


def _resolve(aws: Aws, proxy: AwsProxy, **extra: str) -> set[str]:
    """Resolve one secret and one parameter; the modules imported on the way."""
    aws.secret("imports", "value-imports")
    aws.parameter("imports", "param-imports")
    secret, parameter = aws.sm_ref("imports"), aws.ssm_ref("imports")
    env = {**aws_env(proxy.url, SECRET=secret, PARAM=parameter), **extra}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "secrets_init", "--", "sh", "-c",
         'test "$SECRET/$PARAM" = value-imports/param-imports'],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert proxy.counts == {"BatchGetSecretValue": 1, "GetParameters": 1}
    return {
        line.rpartition("|")[2].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }


@pytest.fixture(autouse=True)
def _module_only() -> None:
    if binary() is not None:
        pytest.skip("imports are measured on the module, not the frozen binary")


def test_a_resolution_imports_no_sdk_documentation_and_no_package_metadata(
    aws: Aws, proxy: AwsProxy
) -> None:
    imported = _resolve(aws, proxy)
    assert "botocore.client" in imported and "urllib3.connection" in imported
    assert not imported & set(TRIMMED), sorted(imported & set(TRIMMED))


def test_when_the_trim_fails_the_sdk_is_imported_whole_and_secrets_resolve(
    aws: Aws, proxy: AwsProxy, tmp_path: Path
) -> None:
    (tmp_path / "sitecustomize.py").write_text(BROKEN_TRIM)
    base = aws_env(proxy.url)
    pythonpath = os.pathsep.join((str(tmp_path), base["PYTHONPATH"]))
    imported = _resolve(aws, proxy, PYTHONPATH=pythonpath)
    assert "botocore.docs.service" in imported  # imported whole, the second time
