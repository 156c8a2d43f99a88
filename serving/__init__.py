"""Serving: a TF-Serving-compatible model server and a Flask demo frontend."""
