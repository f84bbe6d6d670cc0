"""Stage 1: the catalog — matrix/ and benchmarks/ YAML read, validated and typed."""
