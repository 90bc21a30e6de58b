"""`secrets-init-webhook`: options, then the server until SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from secrets_init.webhook import config, kube
from secrets_init.webhook.certificates import Certificates
from secrets_init.webhook.images import ImageConfigs
from secrets_init.webhook.metrics import Metrics
from secrets_init.webhook.mutate import Mutator
from secrets_init.webhook.registry import Registry
from secrets_init.webhook.server import WebhookServer

USAGE_ERROR = 2
START_ERROR = 1


def main(argv: Sequence[str] | None = None) -> int:
    try:
        options = config.parse(sys.argv[1:] if argv is None else argv, os.environ)
    except config.OptionsError as error:
        print(f"secrets-init-webhook: {error}", file=sys.stderr)
        return USAGE_ERROR
    logging.basicConfig(
        level=options.log_level.upper(),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    log = logging.getLogger("secrets_init.webhook")
    metrics = Metrics()
    try:
        certificates = Certificates(
            options.tls_cert_file, options.tls_key_file, metrics.certificate_reload
        )
        cluster = kube.KubeCluster(kube.configuration(), options.api_timeout)
    except Exception as error:  # noqa: BLE001 (one line saying why it cannot start)
        print(f"secrets-init-webhook: cannot start: {error}", file=sys.stderr)
        return START_ERROR
    registry = Registry(options.platform, options.registry_timeout)
    excluded = tuple(filter(None, (options.namespace, *options.exclude_namespaces)))
    mutator = Mutator(
        image=options.image,
        cluster=cluster,
        images=ImageConfigs(registry, cluster, metrics, options.tag_cache_seconds),
        excluded=excluded,
    )
    try:
        server = WebhookServer((options.host, options.port), certificates, mutator, metrics)
    except OSError as error:
        print(
            f"secrets-init-webhook: cannot listen on {options.host}:{options.port}: {error}",
            file=sys.stderr,
        )
        return START_ERROR

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    log.info("serving https://%s:%s (image %s)", host, port, options.image)
    server.serve_forever()
    server.server_close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
