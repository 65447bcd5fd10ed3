"""What one server process runs for its sockets: the node (node.py) and what it owns."""
