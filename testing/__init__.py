"""What the tests, the benchmarks and the demo share: local stand-ins for the cloud, and one way
to run secrets-init.

- `testing.moto`: moto's server (AWS) and helpers that create secrets and parameters in it.
- `testing.aws_proxy`: an HTTP proxy in front of moto that adds latency, injects faults and
  counts calls (how many, which, how many at once).
- `testing.fake_secretmanager`: Google Secret Manager's REST API on loopback (and its gRPC
  face, for earlier builds).
- `testing.process`: running secrets-init as a real process or as PID 1, with an environment
  built from nothing, and what came of it.
- `testing.supervised`: a long-running secrets-init around a program that records signals.
- `testing.witness`: ptrace on one process, to see the signals PID 1 sends it before PID 1's
  exit tears the namespace down.
- `testing.loopback`: the small in-process HTTP(S) server the stand-ins share, a free port, and a
  wait for server processes.
- For the admission webhook: `testing.tls` (a throwaway CA), `testing.kube_api` (the Kubernetes
  API GETs the webhook makes), `testing.registry` (Debian's docker-registry and a token
  service), `testing.oci` (image layouts to push), `testing.pods` (pods and AdmissionReviews),
  `testing.webhook_process` (the webhook as a real HTTPS process) and `testing.kubelet` (a
  mutated pod played with podman).

It lives outside tests/ so bench/ and scripts/demo.py need not import test modules, and it
is not part of the wheel (pyproject.toml packages only secrets_init*).
"""
