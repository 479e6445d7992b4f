"""The presets of ``videostyle run --preset NAME``, installed as the package ``videostyle.presets``
(see ``[tool.setuptools.package-dir]`` in pyproject.toml), so a plain ``pip install`` ships them."""
