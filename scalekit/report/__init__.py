"""Presenting results, apart from computing them: tables for people (tables.py), the JSON / CSV /
Markdown documents for machines (document.py), check's changes (changes.py) and plots (plot.py)."""
