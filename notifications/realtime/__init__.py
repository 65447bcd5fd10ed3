"""What one server process runs for its sockets: the consumer, the node (node.py) and what it
owns, the one module that talks to the channel layer (broker.py), who is online (presence.py),
and the receivers that turn what was committed into pushes. Internal: nothing here is imported
by a project; ``routing`` and ``auth`` are its public face. docs/realtime.md walks through it."""
