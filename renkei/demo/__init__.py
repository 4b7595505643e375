"""The demo and its synthetic data, outside the runtime: only the CLI (the composition root),
the tests and the benchmarks import this package.

* :mod:`.world` - the demo's municipalities, school codes and accounts;
* :mod:`.synth` - synthetic data in every source system's own export format;
* :mod:`.seed` - ``renkei demo``: onboard, load through the real connectors, create accounts.
"""
