"""What the AWS providers skip of the SDK's set-up, and that skipping changes no answer.

Imports (secrets_init/providers/trimmed_import.py): real `secrets-init -- true`
runs against moto, with `-X importtime`, which the forked child inherits: its
imports are in the output too. The documentation machinery and the package
metadata must stay out of a resolution; and when the trim cannot work (here:
its stand-in fails while botocore imports), the SDK is imported whole and
the secrets still resolve.

Known services (aws_client._KnownServices): botocore's check that a service
exists is answered from that service's directory; the answers must be the
ones botocore's full list gives. Data (aws_client rebinds botocore.loaders'
OrderedDict): botocore's files decode into dicts equal to, and in the same
order as, botocore's own OrderedDicts.
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import botocore.loaders
import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError

from secrets_init.providers import aws_client
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


@pytest.fixture
def module_only() -> None:
    if binary() is not None:
        pytest.skip("imports are measured on the module, not the frozen binary")


@pytest.mark.usefixtures("module_only")
def test_a_resolution_imports_no_sdk_documentation_and_no_package_metadata(
    aws: Aws, proxy: AwsProxy
) -> None:
    imported = _resolve(aws, proxy)
    assert "botocore.client" in imported and "urllib3.connection" in imported
    assert not imported & set(TRIMMED), sorted(imported & set(TRIMMED))


@pytest.mark.usefixtures("module_only")
def test_when_the_trim_fails_the_sdk_is_imported_whole_and_secrets_resolve(
    aws: Aws, proxy: AwsProxy, tmp_path: Path
) -> None:
    (tmp_path / "sitecustomize.py").write_text(BROKEN_TRIM)
    base = aws_env(proxy.url)
    pythonpath = os.pathsep.join((str(tmp_path), base["PYTHONPATH"]))
    imported = _resolve(aws, proxy, PYTHONPATH=pythonpath)
    assert "botocore.docs.service" in imported  # imported whole, the second time


def test_known_services_answer_as_botocore_s_full_list() -> None:
    plain = botocore.session.get_session().get_component("data_loader")
    loader = botocore.session.get_session().get_component("data_loader")
    aws_client._check_services_one_by_one(loader)
    for type_name in ("service-2", "endpoint-rule-set-1", "waiters-2"):
        everything = plain.list_available_services(type_name)
        known = loader.list_available_services(type_name)
        assert isinstance(known, aws_client._KnownServices)
        for name in ("secretsmanager", "ssm", "sts", "sso-oidc", "no-such-service", "data"):
            assert (name in known) == (name in everything), (type_name, name)
        assert list(known) == everything and len(known) == len(everything)


def test_an_unknown_service_is_refused_with_botocore_s_list() -> None:
    session = botocore.session.get_session()
    aws_client._check_services_one_by_one(session.get_component("data_loader"))
    with pytest.raises(UnknownServiceError, match=r"Valid service names are: .*secretsmanager"):
        session.create_client("no-such-service", region_name="us-east-1")


def test_botocore_data_decodes_into_dicts_equal_to_botocore_s_own() -> None:
    """aws_client rebinds botocore.loaders.OrderedDict: the same data, same order, as dicts."""
    assert botocore.loaders.OrderedDict is dict  # aws_client is imported above
    loader = botocore.session.get_session().get_component("data_loader")
    for name in ("endpoints", "secretsmanager/2017-10-17/service-2"):
        data, found = loader.load_data_with_path(name)
        plain, packed = Path(f"{found}.json"), Path(f"{found}.json.gz")
        text = plain.read_bytes() if plain.exists() else gzip.decompress(packed.read_bytes())
        theirs = json.loads(text, object_pairs_hook=collections.OrderedDict)
        assert type(data) is dict and data == theirs
        assert json.dumps(data) == json.dumps(theirs)  # the same keys in the same order
