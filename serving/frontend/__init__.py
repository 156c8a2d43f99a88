"""The Flask demo frontend: a client of the model server (see serving/client.py), never a model host."""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request
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

    from serving.frontend.api import api
    from serving.frontend.pages import pages

    app.register_blueprint(api)
    app.register_blueprint(pages)

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
