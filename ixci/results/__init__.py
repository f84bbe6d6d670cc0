"""Stage 4: results — artifacts validated, aggregated, compared and published; history read."""
