"""Start-up files for autologging in other Python processes.

``modeltrack run`` puts this directory on the child's ``PYTHONPATH``, so that its
``sitecustomize`` switches autologging on (see :func:`modeltrack.autologging.autolog_from_env`)
even where the ``modeltrack_autolog.pth`` file is not installed.
"""
