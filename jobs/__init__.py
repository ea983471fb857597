"""The job domain shared by the API, the worker and the migrations (no Flask, no torch)."""
