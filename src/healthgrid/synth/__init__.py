"""Synthetic region generator (being written)."""


def generate_region(engine, size="tiny", seed=1, progress=None):
    raise NotImplementedError
