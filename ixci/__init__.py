"""ixci — continuous LLM-inference benchmarks driven by GitHub Actions."""

__version__ = "0.1.0"
