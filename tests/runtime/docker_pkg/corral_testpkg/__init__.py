"""Environments packaged as a local project, for the image tests."""
