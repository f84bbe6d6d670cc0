"""Accuracy evals on the warm server: task definitions, data loaders, extraction, scoring.

A task (`benchmarks/evals/<name>.yaml`, `schemas/eval.schema.json`) is defined the way the
lm-evaluation-harness defines one: a prompt template with few-shot examples, an extraction
rule and a metric. `run.run_suite` sends its rows to a running OpenAI-compatible server
(bounded concurrency, bounded replies: a reply is untrusted input) and returns per task the
score, the sample count and a Wilson 95 % interval; `scoring.gate` decides a recipe's quality
gate (speculative-decoding acceptance per point is `ixci.run.specdec`; the incumbent's eval
settings are mapped by `ixci.importer.evals`).
Modules: `tasks` (definitions), `data` (rows), `extract` (answers), `scoring` (intervals,
gates), `client` (HTTP), `run` (a suite end to end), `step` (the run-job hook).
"""
