"""python -m serving.frontend --port 5000 --rest-url http://127.0.0.1:8501 [--grpc-target 127.0.0.1:8500] [--transport rest|grpc]"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None) -> int:
    from serving.frontend.config import FrontendConfig, charset_argument, port_argument

    p = argparse.ArgumentParser(prog="python -m serving.frontend", description="The Flask demo frontend.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port_argument(1), default=5000)
    p.add_argument("--rest-url", default="http://127.0.0.1:8501")
    p.add_argument("--grpc-target", default="127.0.0.1:8500")
    p.add_argument("--transport", choices=("rest", "grpc"), default="rest")
    p.add_argument("--models-config", default="serving_models/models.config")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument(
        "--captcha-charset",
        type=charset_argument,
        default="0123456789",
        help="characters for generated captchas (match the served model's)",
    )
    args = p.parse_args(argv)
    from serving.frontend import create_app

    try:
        config = FrontendConfig(
            rest_url=args.rest_url,
            grpc_target=args.grpc_target,
            transport=args.transport,
            models_config=args.models_config,
            runs_dir=args.runs_dir,
            captcha_charset=args.captcha_charset,
        )
    except ValueError as e:
        print(f"frontend: {e}", file=sys.stderr)
        return 2
    app = create_app(config)
    print(f"Frontend at http://{args.host}:{args.port}/ (model server over {args.transport})", flush=True)
    try:
        app.run(host=args.host, port=args.port, threaded=True)
    except OSError as e:
        print(f"frontend: cannot start: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
