"""Resolve an AWS Secrets Manager secret, an SSM parameter and a Google secret from local
emulators into a real program, through secrets-init running as a real process."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from tests.google.fake_secretmanager import FakeSecretManager  # noqa: E402

SHOW = """
import os
for name in ("DB_PASSWORD", "API_TOKEN", "GOOGLE_KEY", "TLS_KEY_FILE"):
    print(f"  the program sees {name}={os.environ[name]}")
print("  the file at TLS_KEY_FILE holds:", open(os.environ["TLS_KEY_FILE"]).read())
"""


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    aws = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    aws.start()
    host, port = aws.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    credentials = {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_ENDPOINT_URL": endpoint,
    }
    session = boto3.Session(
        region_name="us-east-1", aws_access_key_id="demo", aws_secret_access_key="demo"
    )
    secret = session.client("secretsmanager", endpoint_url=endpoint).create_secret(
        Name="demo/db", SecretString='{"username": "app", "password": "demo-db-password"}'
    )
    session.client("ssm", endpoint_url=endpoint).put_parameter(
        Name="/demo/api-token", Value="demo-api-token", Type="SecureString"
    )
    google = FakeSecretManager()
    google.start()
    google.add_secret("demo-project", "google-key", "demo-google-key")
    google.add_secret("demo-project", "tls-key", "-----BEGIN DEMO KEY-----")

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **credentials,
        "SECRETMANAGER_EMULATOR_HOST": google.address,
        "DB_PASSWORD": secret["ARN"] + ":password::",
        "API_TOKEN": "arn:aws:ssm:us-east-1:123456789012:parameter/demo/api-token",
        "GOOGLE_KEY": "gcp:secretmanager:projects/demo-project/secrets/google-key",
        "TLS_KEY_FILE": (
            "gcp:secretmanager:projects/demo-project/secrets/tls-key?destination=tempfile"
        ),
    }
    print("The environment secrets-init starts with (references only):")
    for name in ("DB_PASSWORD", "API_TOKEN", "GOOGLE_KEY", "TLS_KEY_FILE"):
        print(f"  {name}={env[name]}")
    command = [sys.executable, "-m", "secrets_init", "--", sys.executable, "-c", SHOW]
    print("\n$ secrets-init -- python -c <show what I got>")
    try:
        result = subprocess.run(command, env=env, cwd=ROOT, check=False)
    finally:
        google.stop()
        aws.stop()
    print(f"\nsecrets-init exited with status {result.returncode}")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
