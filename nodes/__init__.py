"""Quality Gate node classes (thin adapters) and the plain logic under them (``core``)."""
