"""A model server that speaks TensorFlow Serving's REST and gRPC API (see serving/model_server/README.md)."""
