"""One frame's optimisation: VGG-19 features, the losses, tiles, the optimiser, memory, device and
colour transfers, and :class:`~videostyle.frame.stylize.Stylizer` over them.

It knows nothing of jobs, stages, units or engines, so it can be used (and tested) on one image
alone. Inside videostyle it imports only itself, ``videostyle.config``, ``videostyle.errors``,
``videostyle.images``, ``videostyle.looks``, the version (``videostyle``) and the ``flow``
package; ``tests/test_imports.py`` fails on anything else.
"""
