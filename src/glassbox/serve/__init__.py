"""``glassbox serve``: a glassbox net behind an HTTP prediction API, with the defences of deployed ones.

- :mod:`glassbox.serve.accounts`: API keys, per-key budgets, answers remembered by request id;
- :mod:`glassbox.serve.app`: the FastAPI application (``/v1/predict``, ``/v1/info``, ``/v1/usage``);
- :mod:`glassbox.serve.run`: building the service from a MODEL string and running it with uvicorn;
- :mod:`glassbox.serve.process`: the service in a child process on a free loopback port;
- :mod:`glassbox.serve.faults`: a loopback proxy that drops, fails and stalls requests (tests).

Importing this package imports nothing heavy; FastAPI and uvicorn (the ``serve`` extra)
are imported by the modules that need them.
"""
