"""Serving a class: deploy/compose.yaml (Docker) and deploy/local.py (without Docker)."""
