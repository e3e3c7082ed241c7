"""parhash's benchmarks against the peer tools (targets of issue 13): ``python -m benchmarks``.

Modules, in the order a run uses them: ``corpus`` builds the seeded trees,
``cases`` says what runs against what (and the targets), ``timing`` runs the
commands round-robin and measures them, ``machine`` describes the computer,
``report`` writes RESULTS.md and the chart; ``cli`` ties them together.
"""
