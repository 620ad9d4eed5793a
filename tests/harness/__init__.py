"""The offline test harness: simulated AWS, a replayed spot market, Pulumi mocks.

See ``specs/concepts/architecture.md`` ("Proving it offline") and
``../shared/reference/offline-testing.md`` for what each piece stands in for.
"""
