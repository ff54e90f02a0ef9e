"""Framework integrations, shipped as ``modeltrack.integrations``: one module per framework.

Each module imports its framework at the top, so importing it needs that framework;
``import modeltrack`` never imports any of them.
"""
