"""The native REST API, one module per resource; each route is a thin adapter over a Backend."""
