"""The Flask demo frontend: a client of the model server (see serving/client.py), never a model host."""

from __future__ import annotations

import os
import secrets
import time

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from serving.client import make_client
from serving.frontend.config import FrontendConfig
from serving.frontend.services import Services


def create_app(config: FrontendConfig | None = None, client=None) -> Flask:
    """`client` replaces the model-server client (any object with the serving.client methods)."""
    config = config or FrontendConfig()
    app = Flask(__name__)
    # Room for a 2 MiB image after base64 and multipart overhead; the views check the decoded size.
    app.config["MAX_CONTENT_LENGTH"] = config.max_image_bytes * 4 // 3 + 64 * 1024
    client = client or make_client(config.transport, config.rest_url, config.grpc_target, config.timeout_seconds)
    app.extensions["frontend"] = Services(config, client)
    app.jinja_env.filters["datetime"] = lambda seconds: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))

    from serving.frontend.api import api
    from serving.frontend.pages import pages

    app.register_blueprint(api)
    app.register_blueprint(pages)
    # Forms carry a token tied to the session cookie (Flask-WTF); the book's /predict API takes no cookies
    # and is called by programs, so it is exempt. Several processes behind one address (gunicorn workers)
    # need one key: FRONTEND_SECRET_KEY; otherwise each process makes its own.
    app.config["SECRET_KEY"] = os.environ.get("FRONTEND_SECRET_KEY") or secrets.token_hex(32)
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    CSRFProtect(app).exempt(api)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        message = f"This form did not come from this site or has expired ({error.description}); reload the page and try again."
        return render_template("error.html", code=400, message=message, error=None), 400

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if request.path.startswith("/artifacts/"):
            # Files a pipeline wrote: no scripts, no forms, a unique origin; the run page may frame them.
            headers.setdefault(
                "Content-Security-Policy",
                "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox; frame-ancestors 'self'",
            )
            headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        else:
            headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                "form-action 'self'; frame-ancestors 'none'",
            )
            headers.setdefault("X-Frame-Options", "DENY")
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if request.path in ("/predict", "/ping") or request.accept_mimetypes.best == "application/json":
            return jsonify({"success": False, "error": error.description}), error.code
        return render_template("error.html", code=error.code, message=error.description, error=None), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        app.logger.exception("unexpected error")
        message = f"internal error: {type(error).__name__}"
        if request.path in ("/predict", "/ping"):
            return jsonify({"success": False, "error": message}), 500
        return render_template("error.html", code=500, message=message, error=None), 500

    return app
