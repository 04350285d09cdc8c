"""Clients that drive the teaching servers and check every byte they get back."""
