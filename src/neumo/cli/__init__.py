"""The ``neumo`` command line: a thin face over the library."""
