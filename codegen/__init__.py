"""The code generator: ``python -m codegen`` turns ``openapi/flireo.yaml`` into ``flireo_async/_generated``."""
