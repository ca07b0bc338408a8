"""Turning local files into a committed version: hashing, uploading, committing."""
