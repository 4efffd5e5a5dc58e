"""What the tests share, so that no test file imports another: builders of
hand-made exports and clinics (``builders``), the real app under AppTest and
what a page drew (``apptest``), the real server in Chromium (``browser``),
and readers of the documents the product writes (``documents``).  Fixtures
live in ``tests/conftest.py``."""
