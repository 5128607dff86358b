"""The explorer: a local web app over a folder of runs (``genzoo serve RUNS_DIR``).

A small JSON API (``app.py``) over what the run folders already hold (``runs.py``), a single
worker thread that runs every model computation in turn (``worker.py``: sampling, interpolation,
decoding points of a latent plane, with ``latent.py`` and ``options.py``), and one static page
that draws itself from that API (``static/``). Nothing is fetched from, or sent to, the
internet; the server binds to 127.0.0.1 unless told otherwise. Needs ``genzoo[serve]``
(FastAPI and uvicorn).
"""
