"""labkit: the plumbing of the asynclab course.

    import labkit
    with labkit.serve("select_echo") as srv:     # a teaching server in a child process
        ...
    print(labkit.doctor())                        # is this machine ready?
"""
from labkit.background import ServerHandle, ServerStartError, running, serve, stop_all
from labkit.doctor import doctor
from labkit.limits import TooManyClients, check_client_count, max_clients
from labkit.source import show, source_of

__all__ = ["serve", "stop_all", "running", "ServerHandle", "ServerStartError", "doctor",
           "max_clients", "check_client_count", "TooManyClients", "show", "source_of"]
