"""Clients that drive the teaching servers and check every byte they get back.

They are plain code and know nothing of processes: ``labkit.runs`` decides where a strategy
runs (here, or gevent-patched in a child process).
"""
