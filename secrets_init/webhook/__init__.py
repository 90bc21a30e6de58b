"""A mutating admission webhook that puts secrets-init into the pods that need it.

It is a separate program (`secrets-init-webhook`, the `webhook` extra) that
only imports from secrets-init what decides whether a value is a reference;
secrets-init itself never imports it.
"""
