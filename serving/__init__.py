"""Serving: the TF-Serving-compatible model server, its one client (client.py), the Flask demo
frontend and the deployment files for the official server. `python -m serving` is `make serve`."""
