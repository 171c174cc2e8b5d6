"""Composition: settings and the `dreamloop` command. Nothing imports this package back."""
