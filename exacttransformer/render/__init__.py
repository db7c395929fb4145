"""Readers of a trace: layout (trace -> views) and the text, JSON and Markdown writers.

Layer: presentation.  Nothing here computes a node; it formats the values in the trace.
"""
