"""Patterns that compose several models (student-teacher, ...)."""
