"""Sub-commands of the ``genzoo`` command line (see ``genzoo.cli``)."""
