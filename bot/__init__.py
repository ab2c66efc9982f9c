"""Klimabot: the process that serves a climate network's members on chat platforms."""
