"""Living Portrait's compute backend: the server, the farm renderer, engines and detectors."""
