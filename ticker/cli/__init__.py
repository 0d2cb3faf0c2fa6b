"""The ``ticker`` command; ``main.main`` runs it (``python -m ticker``, the ``ticker``
script)."""
