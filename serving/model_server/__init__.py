"""A model server that speaks TensorFlow Serving's REST and gRPC API (README: "Model server").

Protocol layer: rest.py, json_codec.py, grpc_service.py. Model layer: manager.py
(versions, policy, routing), servable.py (one loaded version), batching.py,
inference.py (predict/classify/regress/warmup). Wiring: server.py, __main__.py."""
