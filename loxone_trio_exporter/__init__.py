"""Prometheus exporter for Loxone Miniservers, built on trio.

This module stays import-light on purpose: ``loxone_trio_exporter.protocol`` is sans-IO and must
be importable without pulling in trio or the web stack.
"""

__version__ = "0.1.0"
