"""The small-step machine: lowering, handlers, the tick table, instantiation, ``Machine``."""
