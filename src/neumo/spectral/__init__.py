"""Spectral instrument: effective ranks, spectra, curvature and a training tracker."""
