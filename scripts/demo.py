"""Resolve an AWS Secrets Manager secret, an SSM parameter and a Google secret from local
emulators into a real program, through secrets-init running as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testing.fake_secretmanager import FakeSecretManager  # noqa: E402
from testing.moto import ACCOUNT, DUMMY_CREDENTIALS, client, start_moto  # noqa: E402
from testing.process import child_env  # noqa: E402

SHOW = """
import os
for name in ("DB_PASSWORD", "API_TOKEN", "GOOGLE_KEY", "TLS_KEY_FILE"):
    print(f"  the program sees {name}={os.environ[name]}")
print("  the file at TLS_KEY_FILE holds:", open(os.environ["TLS_KEY_FILE"]).read())
"""


def main() -> int:
    aws = start_moto()
    secret = client(aws.url, "secretsmanager").create_secret(
        Name="demo/db", SecretString='{"username": "app", "password": "demo-db-password"}'
    )
    client(aws.url, "ssm").put_parameter(
        Name="/demo/api-token", Value="demo-api-token", Type="SecureString"
    )
    google = FakeSecretManager()
    google.start()
    google.add_secret("demo-project", "google-key", "demo-google-key")
    google.add_secret("demo-project", "tls-key", "-----BEGIN DEMO KEY-----")

    references = {
        "DB_PASSWORD": secret["ARN"] + ":password::",
        "API_TOKEN": f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/demo/api-token",
        "GOOGLE_KEY": "gcp:secretmanager:projects/demo-project/secrets/google-key",
        "TLS_KEY_FILE": (
            "gcp:secretmanager:projects/demo-project/secrets/tls-key?destination=tempfile"
        ),
    }
    env = child_env(
        **DUMMY_CREDENTIALS,
        AWS_ENDPOINT_URL=aws.url,
        SECRETMANAGER_EMULATOR_HOST=google.address,
        **references,
    )
    print("The environment secrets-init starts with (references only):")
    for name in ("DB_PASSWORD", "API_TOKEN", "GOOGLE_KEY", "TLS_KEY_FILE"):
        print(f"  {name}={env[name]}")
    command = [sys.executable, "-m", "secrets_init", "--", sys.executable, "-c", SHOW]
    print("\n$ secrets-init -- python -c <show what I got>")
    try:
        result = subprocess.run(command, env=env, cwd=ROOT, timeout=120, check=False)
    finally:
        google.stop()
        aws.stop()
    print(f"\nsecrets-init exited with status {result.returncode}")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
