"""The REST API and the web panel: ``create_app()`` builds the FastAPI application ``reelflow serve`` runs."""

from reelflow.web.app import create_app

__all__ = ["create_app"]
