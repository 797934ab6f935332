"""Values shared by the server fixtures and the tests that check them."""

FIXTURE_ROWS = [{"loss": 2.0 / (s + 1), "acc": s / 10} for s in range(10)]
