"""GitHub Actions: matrix outputs, the approval gate, alert issues and the API calls."""
