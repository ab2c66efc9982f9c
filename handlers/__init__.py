"""Handlers: what each command does, as plain async functions from request to reply."""
