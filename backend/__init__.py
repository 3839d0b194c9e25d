"""Living Portrait's compute backend: the server, the farm renderer, engines and detectors."""

__version__ = "0.1.0"
