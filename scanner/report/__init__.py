"""Renderers of the result document: terminal table, JSON, CSV, HTML."""
